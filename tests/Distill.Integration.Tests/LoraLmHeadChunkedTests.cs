using Distill.Lora;
using Distill.Models;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace Distill.Integration.Tests;

/// <summary>
/// A PEFT-style LoRA adapter on a GPT-2 lm_head (tied to the embedding) is seen by the fused chunked kernel: forward_kl_chunked
/// over the student's hidden states gives the same loss and the same lora_A / lora_B gradients as forward_kl over the
/// full logits of the adapted model (expected values: plain autograd through the model's own lm_head forward).
/// </summary>
[Collection("Sequential")]
public sealed class LoraLmHeadChunkedTests
{
    [Fact]
    public void ForwardKlChunked_LoraOnLmHead_EqualsFullLogitsLossAndAdapterGradients()
    {
        using var scope = NewDisposeScope();
        var config = new Gpt2Config
        {
            ModelType = "gpt2", VocabSize = 37, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2,
            MaxPositionEmbeddings = 32, ResidualDropout = 0, EmbeddingDropout = 0, AttentionDropout = 0,
        };
        var student = AutoCausalLM.FromConfig(config, seed: 3);
        var lora = LoraModel.Inject(student, new LoraConfig { TargetModules = ["lm_head"], R = 2, LoraAlpha = 4, InitLoraWeights = LoraInitialization.Random });
        Assert.NotNull(student.LmHead.Adapter);
        var adapterParameters = lora.TrainableParameters().Where(p => p.Name.Contains("lora_", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, adapterParameters.Count);

        var ids = randint(0, 37, [2, 7], generator: new Generator(4), dtype: ScalarType.Int64);
        var labels = ids.clone();
        labels[0, 0] = tensor(DistillationBatch.IgnoreIndex);
        var teacherLogits = randn(2, 7, 37, generator: new Generator(5)) * 2;
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses(o => o.ChunkSize = 4);
        using var sp = services.BuildServiceProvider();
        var factory = sp.GetRequiredService<IObjectiveFactory>();

        (double Loss, Tensor[] Grads) Run(bool chunked)
        {
            student.zero_grad();
            var output = student.Forward(new CausalLMInput { InputIds = ids, ComputeLogits = !chunked, ReturnHiddenStates = chunked });
            var result = factory.Create(chunked ? "forward_kl_chunked" : "forward_kl").Compute(new ObjectiveContext
            {
                Batch = new DistillationBatch { InputIds = ids, AttentionMask = ones_like(ids), Labels = labels },
                Student = output,
                Teacher = new TeacherOutput { Logits = teacherLogits },
                StudentModel = student,
            });
            result.LossSum.backward();
            return (result.LossSum.item<float>(), [.. adapterParameters.Select(p => p.Parameter.grad!.clone())]);
        }

        var (naiveLoss, naiveGrads) = Run(chunked: false);
        var (chunkedLoss, chunkedGrads) = Run(chunked: true);
        Assert.True(Math.Abs(naiveLoss - chunkedLoss) <= 1e-5 * Math.Abs(naiveLoss), $"loss {naiveLoss} vs {chunkedLoss}");
        for (var i = 0; i < naiveGrads.Length; i++)
        {
            var err = (chunkedGrads[i] - naiveGrads[i]).abs().max().item<float>() / naiveGrads[i].abs().max().item<float>();
            Assert.True(naiveGrads[i].abs().max().item<float>() > 0, $"{adapterParameters[i].Name}: the adapter must receive a gradient");
            Assert.True(err <= 1e-5, $"{adapterParameters[i].Name}: max |Δ| / max |ref| = {err:E2}");
        }
    }
}
