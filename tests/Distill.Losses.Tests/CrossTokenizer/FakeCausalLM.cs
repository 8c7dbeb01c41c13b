using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>A test config.</summary>
internal sealed class FakeConfig : CausalLMConfig
{
}

/// <summary>
/// An <see cref="ICausalLM"/> that only carries weights (lm_head, embedding table, sizes): objectives read those from the
/// models, the logits and hidden states come from the test.
/// </summary>
internal sealed class FakeCausalLM : ICausalLM, IDisposable
{
    private readonly nn.Module module = nn.Linear(1, 1);

    public FakeCausalLM(Tensor lmHead, Tensor? embedding = null, Tensor? lmHeadBias = null)
    {
        LmHeadWeight = lmHead;
        EmbeddingWeight = embedding ?? lmHead;
        LmHeadBias = lmHeadBias;
        Config = new FakeConfig
        {
            ModelType = "fake",
            VocabSize = (int)lmHead.shape[0],
            HiddenSize = (int)lmHead.shape[1],
            NumHiddenLayers = 1,
            NumAttentionHeads = 1,
            MaxPositionEmbeddings = 64,
        };
    }

    public CausalLMConfig Config { get; }

    public nn.Module Module => module;

    public Tensor LmHeadWeight { get; }

    public Tensor? LmHeadBias { get; }

    public Tensor EmbeddingWeight { get; }

    public CausalLMOutput Forward(CausalLMInput input) => throw new NotSupportedException("FakeCausalLM has no forward; tests pass logits and hidden states directly.");

    public void Dispose() => module.Dispose();
}
