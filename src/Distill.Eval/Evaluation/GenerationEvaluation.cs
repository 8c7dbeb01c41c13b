using System.Globalization;
using Distill.Data;
using Distill.Eval.Metrics;
using Distill.Generation;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Distill.Eval.Evaluation;

/// <summary>
/// Generation-based evaluation of a model in one call: model + tokenized dataset (prompts, references, tokenizer) + metrics +
/// seeds → <see cref="EvaluationReport"/>. Prompts are left-padded in batches, generated with <see cref="TextGenerator"/>,
/// decoded, post-processed as DSKD does (cut at <see cref="GenerationEvaluationOptions.StopText"/>, strip) and scored by
/// <see cref="SeededEvaluator"/>: mean ± std over seeds, per-seed values and every prediction.
/// </summary>
/// <example>
/// <code>
/// var report = GenerationEvaluation.Evaluate(student, testSet, [new RougeLMetric(), new DskdExactMatchMetric()],
///     new GenerationEvaluationOptions { Seeds = [42], Generation = new() { MaxNewTokens = 32 } });
/// Console.WriteLine(report.Metrics["rougeL"].Mean);
/// </code>
/// </example>
public static class GenerationEvaluation
{
    /// <summary>Evaluates <paramref name="model"/> on the prompts and references of <paramref name="dataset"/>.</summary>
    /// <param name="model">The model; it runs in eval mode without autograd for each generation (its mode is restored).</param>
    /// <param name="dataset">Prompts and references; its student tokenizer (or teacher's, see <see cref="GenerationEvaluationOptions.UseTeacherTokenizer"/>) encodes and decodes.</param>
    /// <param name="metrics">The metrics, in report order; names must be distinct.</param>
    /// <param name="options">Seeds, batching, decoding and scoring; <see langword="null"/> = the defaults.</param>
    /// <param name="logger">Optional logger (the evaluator's start, per-seed and summary messages).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <param name="progress">Optional progress, reported after every batch.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">Bad options, no metric, an empty dataset or an example without references.</exception>
    public static EvaluationReport Evaluate(
        ICausalLM model,
        TokenizedDataset dataset,
        IEnumerable<IMetric> metrics,
        GenerationEvaluationOptions? options = null,
        ILogger? logger = null,
        CancellationToken cancellationToken = default,
        IProgress<EvaluationProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(metrics);
        options ??= new GenerationEvaluationOptions();
        if (options.Generation is null)
        {
            throw new ArgumentException($"{nameof(GenerationEvaluationOptions)}.{nameof(GenerationEvaluationOptions.Generation)} must be set.", nameof(options));
        }

        options.Generation.Validate();

        if (dataset.Count == 0)
        {
            throw new ArgumentException("The dataset has no examples to evaluate.", nameof(dataset));
        }

        var tokenizer = options.UseTeacherTokenizer
            ? dataset.TeacherTokenizer ?? throw new ArgumentException($"{nameof(GenerationEvaluationOptions.UseTeacherTokenizer)} is set but the dataset has no teacher tokenisation.", nameof(options))
            : dataset.StudentTokenizer;
        var evaluator = new SeededEvaluator(metrics, new EvaluatorOptions
        {
            Seeds = [.. options.Seeds],
            BatchSize = options.BatchSize,
            StopText = options.StopText,
            Strip = options.Strip,
            ScoreScale = options.ScoreScale,
            SampleStandardDeviation = options.SampleStandardDeviation,
        }, logger is null ? null : new EvaluatorLogger(logger));

        var examples = dataset.Examples.Select((e, i) => new EvalExample(i.ToString(CultureInfo.InvariantCulture), e.Prompt, e.References)).ToList();
        var pad = TokenizedDataset.PadId(tokenizer);
        IReadOnlyList<long> eos = options.Generation.EosTokenIds.Count > 0 ? options.Generation.EosTokenIds
            : tokenizer.EosTokenId is int e ? [e] : [];
        return evaluator.Evaluate(examples, (batch, seed, _) =>
        {
            var indices = batch.Select(x => int.Parse(x.Id, CultureInfo.InvariantCulture)).ToList();
            using var scope = NewDisposeScope();
            using var prompts = dataset.CollatePrompts(indices, options.UseTeacherTokenizer);
            var generation = With(options.Generation, seed, eos, options.Generation.PadTokenId ?? pad);
            using var generated = TextGenerator.Generate(model, prompts.InputIds, prompts.AttentionMask, generation);
            var ids = generated.GeneratedIds.cpu();
            return [.. Enumerable.Range(0, indices.Count).Select(b =>
                tokenizer.Decode(ids[b, ..(int)generated.Lengths[b]].data<long>().Select(i => (int)i), options.SkipSpecialTokens))];
        }, cancellationToken, progress);
    }

    /// <summary>Tokenizes <paramref name="examples"/> with <paramref name="tokenizer"/> and evaluates <paramref name="model"/> on them.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="examples">Prompts and references (e.g. a template applied to instruction rows).</param>
    /// <param name="metrics">The metrics.</param>
    /// <param name="options">Seeds, batching, decoding and scoring.</param>
    /// <param name="maxPromptLength">Prompts are cut to their first this many tokens (default 256, Distill.Data's default).</param>
    /// <param name="logger">Optional logger.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>The report.</returns>
    public static EvaluationReport Evaluate(
        ICausalLM model,
        HfTokenizer tokenizer,
        IEnumerable<TextExample> examples,
        IEnumerable<IMetric> metrics,
        GenerationEvaluationOptions? options = null,
        int maxPromptLength = 256,
        ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(examples);
        var dataset = TokenizedDataset.Create(examples, tokenizer, null, maxPromptLength * 2, maxPromptLength);
        return Evaluate(model, dataset, metrics, options, logger, cancellationToken);
    }

    private static GenerationOptions With(GenerationOptions o, int seed, IReadOnlyList<long> eos, long pad) => new()
    {
        MaxNewTokens = o.MaxNewTokens,
        DoSample = o.DoSample,
        Temperature = o.Temperature,
        TopK = o.TopK,
        TopP = o.TopP,
        Seed = seed,
        EosTokenIds = eos,
        PadTokenId = pad,
        StopSequences = o.StopSequences,
        Decode = o.Decode,
        UseCache = o.UseCache,
    };

    /// <summary>Adapts a plain <see cref="ILogger"/> to the evaluator's typed logger.</summary>
    private sealed class EvaluatorLogger(ILogger inner) : ILogger<SeededEvaluator>
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
