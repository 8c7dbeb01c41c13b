using Distill.IO;
using Distill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Models;

/// <summary>
/// Logits against fixtures/parity/make_parity.py: plain-torch reference forwards written from transformers' modeling code,
/// run on tiny random fp32 weights (committed). Tolerance 1e-4 absolute.
/// </summary>
public class ModelParityTests
{
    private const double Tolerance = 1e-4;

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    public void Forward_ReferenceWeights_MatchesTransformersLogits(string name)
    {
        using var scope = torch.NewDisposeScope();
        var dir = TinyModels.FixturePath("parity", name);
        using var model = AutoCausalLM.FromPretrained(dir);
        var expected = SafeTensors.Load(Path.Combine(dir, "expected.safetensors"));
        using var noGrad = torch.no_grad();

        var logits = model.Forward(new CausalLMInput { InputIds = expected["input_ids"] }).Logits!;
        Assert.Equal(expected["logits"].shape, logits.shape);
        AssertClose(expected["logits"], logits, name);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    public void Forward_LeftPaddedWithMask_MatchesTransformersOnValidPositions(string name)
    {
        using var scope = torch.NewDisposeScope();
        var dir = TinyModels.FixturePath("parity", name);
        using var model = AutoCausalLM.FromPretrained(dir);
        var e = SafeTensors.Load(Path.Combine(dir, "expected.safetensors"));
        using var noGrad = torch.no_grad();
        var valid = e["padded_mask"].to_type(ScalarType.Bool).unsqueeze(-1); // [B, T, 1]

        // HF forward: positions arange even under padding.
        var plain = model.Forward(new CausalLMInput { InputIds = e["padded_ids"], AttentionMask = e["padded_mask"] }).Logits!;
        AssertClose(e["padded_logits"].masked_fill(valid.logical_not(), 0), plain.masked_fill(valid.logical_not(), 0), name);

        // HF generate: positions cumsum(mask) - 1.
        var withPos = model.Forward(new CausalLMInput { InputIds = e["padded_ids"], AttentionMask = e["padded_mask"], PositionIds = e["padded_position_ids"] }).Logits!;
        AssertClose(e["padded_pos_logits"].masked_fill(valid.logical_not(), 0), withPos.masked_fill(valid.logical_not(), 0), name);
        Assert.False(withPos.isnan().any().item<bool>()); // fully padded query rows stay finite (finfo.min masking)

        // And the padded row equals the unpadded row run alone (row 1: 3 pads, then ids[1, 3..]).
        var alone = model.Forward(new CausalLMInput { InputIds = e["padded_ids"][1..2, 3..] }).Logits!;
        AssertClose(alone[0], withPos[1, 3..], name);
    }

    [Fact]
    public void FromPretrained_Llama3RopeScaling_MatchesReferenceFrequencies()
    {
        // make_parity.py's llama: head_dim 8, θ = 1e4, llama3 scaling factor 8, low 1, high 4, original 16 positions.
        // inv_freq = θ^(-2i/8) = [1, 0.1, 0.01, 0.001]; wavelen = 2π/f = [6.28, 62.8, 628, 6283]; low_wavelen 16, high_wavelen 4.
        // i=0: 6.28 in [4, 16] -> medium: smooth = (16/6.283 - 1)/(4 - 1) = 0.51549; f = (1 - s)·1/8 + s·1 = 0.57604.
        // i=1..3: wavelen > 16 -> f / 8 = [0.0125, 0.00125, 0.000125].
        using var model = (RopeDecoderForCausalLM)AutoCausalLM.FromPretrained(TinyModels.FixturePath("parity", "llama"));
        var f = model.RopeInverseFrequencies;
        var smooth = ((16 / (2 * Math.PI)) - 1) / 3;
        Assert.Equal(((1 - smooth) / 8) + smooth, f[0], 6);
        Assert.Equal(0.0125, f[1], 6);
        Assert.Equal(0.00125, f[2], 7);
        Assert.Equal(0.000125, f[3], 8);
    }

    internal static void AssertClose(Tensor expected, Tensor actual, string what, double tolerance = Tolerance)
    {
        var diff = (expected.to_type(ScalarType.Float32) - actual.to_type(ScalarType.Float32)).abs().max().item<float>();
        Assert.True(diff <= tolerance, $"{what}: max |Δ| = {diff} > {tolerance}");
    }
}
