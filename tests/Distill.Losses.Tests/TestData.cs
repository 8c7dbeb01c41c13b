using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>Test inputs: the golden fixture, random logits, batches, contexts and a tiny real causal LM.</summary>
internal static class TestData
{
    private static readonly Lazy<JsonDocument> GoldenDoc = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "goldens.json"))));

    internal static JsonElement Golden => GoldenDoc.Value.RootElement;

    /// <summary>A float32 tensor from a nested JSON array with the given shape.</summary>
    internal static Tensor FloatTensor(JsonElement e, params long[] shape)
    {
        var values = new List<float>();
        Flatten(e, values);
        return tensor(values.ToArray()).reshape(shape);
    }

    internal static Tensor LongTensor(JsonElement e, params long[] shape)
    {
        var values = new List<float>();
        Flatten(e, values);
        return tensor(values.Select(v => (long)v).ToArray()).reshape(shape);
    }

    private static void Flatten(JsonElement e, List<float> into)
    {
        if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var x in e.EnumerateArray())
            {
                Flatten(x, into);
            }
        }
        else
        {
            into.Add((float)e.GetDouble());
        }
    }

    /// <summary>Golden student logits, teacher logits and labels.</summary>
    internal static (Tensor Student, Tensor Teacher, Tensor Labels) GoldenInputs()
    {
        var shape = Golden.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
        return (FloatTensor(Golden.GetProperty("student"), shape), FloatTensor(Golden.GetProperty("teacher"), shape),
            LongTensor(Golden.GetProperty("labels"), shape[0], shape[1]));
    }

    /// <summary>Random logits [b, t, v] (seeded), scaled by <paramref name="scale"/>.</summary>
    internal static Tensor Logits(long seed, long b, long t, long v, double scale = 2.0, ScalarType dtype = ScalarType.Float32)
    {
        var g = new Generator((ulong)seed);
        return (randn(b, t, v, generator: g, dtype: ScalarType.Float64) * scale).to(dtype);
    }

    /// <summary>Random labels [b, t] in [0, v) with the given positions set to −100.</summary>
    internal static Tensor Labels(long seed, long b, long t, long v, params (long B, long T)[] ignored)
    {
        var g = new Generator((ulong)seed);
        var labels = randint(0, v, [b, t], generator: g, dtype: ScalarType.Int64);
        foreach (var (bi, ti) in ignored)
        {
            labels[bi, ti] = tensor(DistillationBatch.IgnoreIndex);
        }

        return labels;
    }

    internal static DistillationBatch Batch(Tensor labels) => new()
    {
        InputIds = zeros_like(labels),
        AttentionMask = ones_like(labels),
        Labels = labels,
    };

    /// <summary>A context over given logits (no real model needed for logits-based objectives).</summary>
    internal static ObjectiveContext Context(Tensor student, Tensor? teacher, Tensor labels, ICausalLM? model = null) => new()
    {
        Batch = Batch(labels),
        Student = new CausalLMOutput(student, null, null),
        Teacher = teacher is null ? null : new TeacherOutput { Logits = teacher },
        StudentModel = model ?? new TinyCausalLM(seed: 1, vocab: student.shape[^1], hidden: 4),
    };

    /// <summary>Creates an objective through DI, as a host would.</summary>
    internal static IDistillationObjective Create(string name, Action<LossesOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillLosses(configure);
        using var sp = services.BuildServiceProvider();
        return sp.GetRequiredService<IObjectiveFactory>().Create(name);
    }

    internal static double Value(Tensor t) => t.to(ScalarType.Float64).item<double>();
}

/// <summary>A tiny but real causal LM for the chunked objectives: hidden = tanh(E[ids]), logits = hidden·Wᵀ (+ b).</summary>
internal sealed class TinyCausalLM : ICausalLM
{
    private readonly Holder module;

    public TinyCausalLM(long seed, long vocab, long hidden, bool withBias = false)
    {
        var g = new Generator((ulong)seed);
        module = new Holder(
            nn.Parameter(randn(vocab, hidden, generator: g)),
            nn.Parameter(randn(vocab, hidden, generator: g) * 0.5),
            withBias ? nn.Parameter(randn(vocab, generator: g) * 0.1) : null);
        Config = new TinyConfig { ModelType = "tiny", VocabSize = (int)vocab, HiddenSize = (int)hidden, NumHiddenLayers = 0, NumAttentionHeads = 1, MaxPositionEmbeddings = 1024 };
    }

    public CausalLMConfig Config { get; }

    public nn.Module Module => module;

    public Tensor LmHeadWeight => module.LmHead;

    public Tensor? LmHeadBias => module.Bias;

    public Tensor EmbeddingWeight => module.Embedding;

    public CausalLMOutput Forward(CausalLMInput input)
    {
        var h = module.Embedding.index_select(0, input.InputIds.reshape(-1)).reshape(input.InputIds.shape[0], input.InputIds.shape[1], -1).tanh();
        var logits = input.ComputeLogits ? nn.functional.linear(h, LmHeadWeight, LmHeadBias) : null;
        return new CausalLMOutput(logits, input.ReturnHiddenStates ? h : null, input.Cache);
    }

    private sealed class TinyConfig : CausalLMConfig;

    private sealed class Holder : nn.Module
    {
        public Holder(Parameter embedding, Parameter lmHead, Parameter? bias)
            : base("tiny")
        {
            Embedding = embedding;
            LmHead = lmHead;
            Bias = bias;
            register_parameter("embed", embedding);
            register_parameter("lm_head", lmHead);
            if (bias is not null)
            {
                register_parameter("lm_head_bias", bias);
            }
        }

        public Parameter Embedding { get; }

        public Parameter LmHead { get; }

        public Parameter? Bias { get; }
    }
}
