using Distill.IO;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Models;

/// <summary>
/// Base of the Distill causal LMs: an <c>nn.Module&lt;CausalLMInput, CausalLMOutput&gt;</c> with transformers' module and
/// parameter names (state dicts map 1:1 to HF checkpoints), forward over ids/mask/positions/cache, and HF-format saving.
/// </summary>
/// <remarks>
/// Forward semantics follow transformers: with <see cref="CausalLMInput.PositionIds"/> = <see langword="null"/> positions are
/// <c>arange(past, past + T)</c> even under left padding (pass <c>cumsum(mask) − 1</c> to match unpadded rows, as HF
/// <c>generate</c> does); padded keys are masked with <c>finfo(dtype).min</c>, so fully padded query rows stay finite.
/// Not thread-safe.
/// </remarks>
public abstract class CausalLM : nn.Module<CausalLMInput, CausalLMOutput>, ICausalLM
{
    private List<string>? checkpointKeys;

    /// <summary>Initialises the base.</summary>
    /// <param name="name">The module name.</param>
    /// <param name="config">The configuration.</param>
    protected CausalLM(string name, CausalLMConfig config)
        : base(name)
    {
        Config = config ?? throw new ArgumentNullException(nameof(config));
    }

    /// <inheritdoc />
    public CausalLMConfig Config { get; }

    /// <inheritdoc />
    public nn.Module Module => this;

    /// <summary>Gets the lm_head projection (a tied one for tied models; adapters may be attached to it).</summary>
    public abstract LinearProjection LmHead { get; }

    /// <inheritdoc />
    public Tensor LmHeadWeight => LmHead.Weight;

    /// <inheritdoc />
    public Tensor? LmHeadBias => LmHead.Bias;

    /// <inheritdoc />
    public abstract Tensor EmbeddingWeight { get; }

    /// <summary>Gets the dtype of the weights.</summary>
    public ScalarType DType => EmbeddingWeight.dtype;

    /// <summary>Gets the device of the weights.</summary>
    public Device Device => EmbeddingWeight.device;

    /// <summary>Gets or sets the raw <c>generation_config.json</c> text, written back by <see cref="SavePretrained"/> when set.</summary>
    public string? GenerationConfigJson { get; set; }

    /// <summary>
    /// Gets the state-dict keys that make up an HF checkpoint of this model (parameters of the base model; no adapter
    /// weights, no tied lm_head), in registration order.
    /// </summary>
    public IReadOnlyCollection<string> CheckpointKeys => checkpointKeys ??= [.. state_dict().Keys];

    /// <summary>Records <see cref="CheckpointKeys"/>; derived constructors call it last, before any adapter can be attached.</summary>
    protected void FreezeCheckpointKeys() => checkpointKeys = [.. state_dict().Keys];

    /// <summary>Creates an empty key/value cache for this model.</summary>
    /// <returns>The cache (dispose it).</returns>
    public IKeyValueCache CreateCache() => new KeyValueCache(Config.NumHiddenLayers);

    /// <inheritdoc />
    public CausalLMOutput Forward(CausalLMInput input) => forward(input);

    /// <inheritdoc />
    public override CausalLMOutput forward(CausalLMInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var ids = input.InputIds;
        if (ids.dim() != 2)
        {
            throw new ArgumentException($"InputIds must be [B, T]; got [{string.Join(", ", ids.shape)}].", nameof(input));
        }

        var cache = input.Cache switch
        {
            null => null,
            KeyValueCache c when c.NumLayers == Config.NumHiddenLayers => c,
            KeyValueCache c => throw new ArgumentException($"The cache has {c.NumLayers} layers; the model has {Config.NumHiddenLayers}.", nameof(input)),
            var other => throw new ArgumentException($"Cache of type {other.GetType().Name} is not supported; use {nameof(CreateCache)}().", nameof(input)),
        };

        using var scope = torch.NewDisposeScope();
        var (batch, length) = (ids.shape[0], ids.shape[1]);
        var past = cache?.Length ?? 0;
        var device = Device;
        ids = ids.to(device);
        var positions = input.PositionIds?.to(device)
            ?? TorchScalars.Arange(past, past + length, dtype: ScalarType.Int64, device: device).unsqueeze(0).expand(batch, length);
        if (positions.shape.Length != 2 || positions.shape[0] != batch || positions.shape[1] != length)
        {
            throw new ArgumentException($"PositionIds has shape [{string.Join(", ", positions.shape)}]; expected [{batch}, {length}].", nameof(input));
        }

        var hidden = ForwardHidden(ids, input.AttentionMask?.to(device), positions, past, cache);
        var logits = input.ComputeLogits ? LmHead.forward(hidden) : null;
        return new CausalLMOutput(
            logits?.MoveToOuterDisposeScope(),
            input.ReturnHiddenStates ? hidden.MoveToOuterDisposeScope() : null,
            input.Cache);
    }

    /// <summary>
    /// Saves the model in HF format: <c>config.json</c> (with <c>torch_dtype</c>), weights as <c>model.safetensors</c> or, above
    /// <paramref name="maxShardBytes"/>, sharded with <c>model.safetensors.index.json</c>, and <c>generation_config.json</c> when
    /// <see cref="GenerationConfigJson"/> is set. Each file is written atomically; files of an earlier save in the other layout are removed.
    /// </summary>
    /// <param name="dir">The target folder (created if needed).</param>
    /// <param name="maxShardBytes">Shard size limit; <see langword="null"/> = 5 GB (transformers' default <c>max_shard_size</c>).</param>
    /// <param name="logger">Optional logger (event 1103).</param>
    public void SavePretrained(string dir, long? maxShardBytes = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        Directory.CreateDirectory(dir);
        var limit = maxShardBytes ?? 5_000_000_000L;
        var state = state_dict();
        var keys = CheckpointKeys;
        var tensors = keys.ToDictionary(k => k, k => state[k], StringComparer.Ordinal);
        var total = tensors.Values.Sum(t => t.NumberOfElements * t.ElementSize);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        var files = 1;
        if (total > limit)
        {
            files = SafeTensors.SaveSharded(dir, tensors, limit, metadata).Count;
            DeleteIfExists(Path.Combine(dir, SafeTensors.SingleFileName));
        }
        else
        {
            SafeTensors.Save(Path.Combine(dir, SafeTensors.SingleFileName), tensors, metadata);
            DeleteIfExists(Path.Combine(dir, SafeTensors.IndexFileName));
            foreach (var stale in Directory.EnumerateFiles(dir, "model-*-of-*.safetensors"))
            {
                File.Delete(stale);
            }
        }

        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), ModelConfigLoader.ToJson(Config, DType));
        if (GenerationConfigJson is not null)
        {
            AtomicFile.WriteAllText(Path.Combine(dir, "generation_config.json"), GenerationConfigJson);
        }

        if (logger is not null)
        {
            Log.ModelSaved(logger, Config.ModelType, dir, files, total);
        }
    }

    /// <summary>Runs the decoder: embeddings, layers and the final norm.</summary>
    /// <param name="ids">[B, T] on the model device.</param>
    /// <param name="mask">[B, past + T] or <see langword="null"/>.</param>
    /// <param name="positions">[B, T] int64.</param>
    /// <param name="past">Cached positions before this call.</param>
    /// <param name="cache">The cache to extend, or <see langword="null"/>.</param>
    /// <returns>[B, T, H] after the final norm.</returns>
    private protected abstract Tensor ForwardHidden(Tensor ids, Tensor? mask, Tensor positions, long past, KeyValueCache? cache);

    /// <summary>
    /// Maps a checkpoint tensor name to this model's state-dict key: <see langword="null"/> to skip it (non-persistent buffers
    /// of old checkpoints, a tied lm_head). The default skips <c>lm_head.weight</c> of tied models.
    /// </summary>
    /// <param name="name">The name in the checkpoint.</param>
    /// <returns>The model key, or <see langword="null"/> to ignore the tensor.</returns>
    protected internal virtual string? MapCheckpointKey(string name) =>
        Config.TieWordEmbeddings && name == "lm_head.weight" ? null : name;

    /// <summary>Fills parameters with transformers' random initialisation (normal(0, σ) weights, zero biases, unit norms).</summary>
    /// <param name="generator">The CPU generator to draw from.</param>
    protected internal abstract void InitializeWeights(Generator generator);

    /// <summary>Draws normal(0, std) on the CPU with <paramref name="generator"/> and copies it into <paramref name="target"/>.</summary>
    /// <param name="target">The parameter to fill.</param>
    /// <param name="std">The standard deviation.</param>
    /// <param name="generator">The CPU generator.</param>
    protected static void FillNormal(Tensor target, double std, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(target);
        using var noGrad = torch.no_grad();
        using var values = torch.empty(target.shape, ScalarType.Float32, torch.CPU).normal_(0, std, generator);
        target.copy_(values);
    }

    private static void DeleteIfExists(string path)
    {
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
