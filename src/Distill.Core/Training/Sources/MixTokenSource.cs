using Distill.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Training.Sources;

/// <summary>
/// ATKD's <c>mix_token</c> source: the response is built token by token; at every position one model — the student with
/// probability <see cref="SampleSourceOptions.StudentTokenRatio"/>, else the teacher, the same choice for the whole batch —
/// proposes the next token greedily (argmax). Both models keep key/value caches that follow the sequence.
/// </summary>
/// <remarks>
/// <para>
/// The official code (<c>distill_trainer.py</c> L374-439) re-runs all generated tokens on a prompt-only cache at every step,
/// reseeds torch with 1 on every call and hard-codes CUDA. Here each model's cache is extended lazily: when a model is
/// chosen it consumes, in one forward, the tokens proposed since it last ran, then proposes from its last logits. A model
/// that always proposes therefore runs exactly like <c>TextGenerator</c>'s greedy cached decoding. The coins come from
/// <c>context.CreateRandom(2)</c> (seeded by (seed, epoch, index)). The official <c>multinomial(softmax(logits / 0.001))</c>
/// is argmax up to ties; argmax is used.
/// </para>
/// <para>Every micro-batch is generated (there is no request-level coin). Both models run in eval mode without autograd; their modes are restored.</para>
/// </remarks>
public sealed class MixTokenSource : ISampleSource
{
    private readonly ICausalLM student;
    private readonly ICausalLM teacher;
    private readonly GenerationSettings settings;
    private readonly SampleSourceCounters counters;

    /// <summary>Creates the source.</summary>
    /// <param name="student">The student being trained.</param>
    /// <param name="teacher">The teacher model; it must share the student's vocabulary and live on its device.</param>
    /// <param name="options">Ratios and limits (copied and validated); sampling settings are ignored (greedy).</param>
    /// <param name="logger">Receives the periodic statistics (event 1301).</param>
    /// <exception cref="ArgumentException">Invalid options, a vocabulary mismatch, or the teacher is the student.</exception>
    public MixTokenSource(ICausalLM student, ICausalLM teacher, SampleSourceOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        SampleSources.EnsureSameVocabulary(student, teacher.Config.VocabSize, null, options, "mix_token");
        if (ReferenceEquals(student.Module, teacher.Module))
        {
            throw new ArgumentException("mix_token needs two models; the teacher is the student.", nameof(teacher));
        }

        this.student = student;
        this.teacher = teacher;
        settings = GenerationSettings.Resolve(student, options.Clone(), SampleSourceDefaults.MixTokenMaxNewTokens);
        logger ??= NullLogger.Instance;
        counters = new SampleSourceCounters(Name, options.LogEveryBatches, logger);
        Log.SampleSourceCreated(logger, Name, 1.0, options.StudentTokenRatio, settings.MaxNewTokens, "greedy token mixing");
    }

    /// <inheritdoc />
    public string Name => "mix_token";

    /// <summary>Gets the probability that the student proposes a token.</summary>
    public double StudentTokenRatio => settings.Options.StudentTokenRatio;

    /// <inheritdoc />
    public bool ReadsStudent => true;

    /// <inheritdoc />
    public SampleSourceStatistics Statistics => counters.Snapshot();

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">A cross-tokenizer batch, an empty prompt, or a prompt or empty response rejected by the options.</exception>
    public DistillationBatch Transform(DistillationBatch batch, BatchTransformContext context)
    {
        ArgumentNullException.ThrowIfNull(batch);
        counters.CountBatch();
        var random = context.CreateRandom(2);
        return ResponseGeneration.Run(batch, context, settings, counters, Name, student.EmbeddingWeight.device, (ids, mask) => Decode(ids, mask, random));
    }

    /// <summary>Greedy decoding where a coin picks, per position, the model that proposes the next token.</summary>
    internal (Tensor Ids, long[] Lengths, bool[] Stopped) Decode(Tensor promptIds, Tensor promptMask, Random random)
    {
        var ratio = settings.Options.StudentTokenRatio;
        var models = new[] { student, teacher };
        var modes = models.Select(m => m.Module.training).ToArray();
        foreach (var m in models)
        {
            m.Module.eval();
        }

        try
        {
            using var noGrad = no_grad();
            var device = student.EmbeddingWeight.device;
            var batch = promptIds.shape[0];
            var ids = promptIds.to(device);
            var mask = promptMask.to(device).to_type(ScalarType.Int64);
            var positions = mask.cumsum(-1).Sub(1).masked_fill(mask.eq(TorchScalars.Constant(0)), TorchScalars.Constant(1)); // transformers' generate: pads get 1
            var lastPosition = positions.select(1, -1).unsqueeze(1); // [B, 1]
            var eos = settings.EosTokenIds.Length > 0 ? tensor(settings.EosTokenIds, device: device) : null;
            var caches = models.Select(m => m is CausalLM c ? c.CreateCache() : null).ToArray();
            var consumed = new[] { -1, -1 }; // generated tokens already in each cache; −1 = not even the prompt
            var tokens = new List<Tensor>();
            var unfinished = ones(batch, ScalarType.Bool, device);
            var lengths = zeros(batch, ScalarType.Int64, device);
            try
            {
                for (var step = 0; step < settings.MaxNewTokens; step++)
                {
                    using var stepScope = NewDisposeScope();
                    var m = random.NextDouble() < ratio ? 0 : 1; // ATKD: student when random.random() < student_token_ratio
                    var logits = NextLogits(models[m], caches[m], ref consumed[m], ids, mask, positions, lastPosition, tokens);
                    var next = logits.argmax(-1);
                    next = where(unfinished, next, next.FullLike(settings.PadTokenId));
                    lengths.add_(unfinished.to_type(ScalarType.Int64), TorchScalars.One);
                    if (eos is not null)
                    {
                        unfinished.logical_and_(isin(next, eos).logical_not());
                    }

                    tokens.Add(next.unsqueeze(1).MoveToOuterDisposeScope());
                    if (!unfinished.any().item<bool>())
                    {
                        break;
                    }
                }
            }
            finally
            {
                foreach (var c in caches)
                {
                    c?.Dispose();
                }
            }

            var generated = tokens.Count > 0 ? cat(tokens, 1) : TorchScalars.Full(batch, 1, settings.PadTokenId, ScalarType.Int64, device);
            var stopped = unfinished.logical_not().cpu().data<bool>().ToArray();
            if (tokens.Count < settings.MaxNewTokens)
            {
                stopped = [.. stopped.Select(_ => true)]; // the loop ended early only because every row stopped
            }

            return (generated, lengths.cpu().data<long>().ToArray(), stopped);
        }
        finally
        {
            for (var i = 0; i < models.Length; i++)
            {
                models[i].Module.train(modes[i]);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="model"/> on what its cache has not seen yet (the prompt and/or the tokens proposed since it last ran)
    /// and returns its next-token logits [B, V] in float32. Without a cache (a model that is not a <see cref="CausalLM"/>) it
    /// recomputes the whole sequence.
    /// </summary>
    private static Tensor NextLogits(ICausalLM model, IKeyValueCache? cache, ref int consumed, Tensor promptIds, Tensor promptMask, Tensor promptPositions, Tensor lastPosition, List<Tensor> tokens)
    {
        var device = promptIds.device;
        var batch = promptIds.shape[0];
        var n = tokens.Count;
        var fullMask = n == 0 ? promptMask : cat([promptMask, ones(batch, n, ScalarType.Int64, device)], 1);
        var from = cache is null ? -1 : consumed;
        var parts = new List<Tensor>();
        var positionParts = new List<Tensor>();
        if (from < 0)
        {
            parts.Add(promptIds);
            positionParts.Add(promptPositions);
            from = 0;
        }

        if (n > from)
        {
            parts.AddRange(tokens.Skip(from));
            positionParts.Add(lastPosition.Add(TorchScalars.Arange(from + 1, n + 1, dtype: ScalarType.Int64, device: device).unsqueeze(0)));
        }

        var input = new CausalLMInput
        {
            InputIds = parts.Count == 1 ? parts[0] : cat(parts, 1),
            AttentionMask = fullMask,
            PositionIds = positionParts.Count == 1 ? positionParts[0] : cat(positionParts, 1),
            Cache = cache,
        };
        consumed = n;
        var logits = model.Forward(input).Logits!;
        return logits.select(1, -1).to_type(ScalarType.Float32);
    }
}
