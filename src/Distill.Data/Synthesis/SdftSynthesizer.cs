using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Distill.Generation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Data.Synthesis;

/// <summary>Progress of an SDFT rewrite run.</summary>
/// <param name="Done">Rows written (resumed rows included).</param>
/// <param name="Total">Rows in the dataset.</param>
/// <param name="Kept">Rows whose rewrite was kept so far.</param>
public readonly record struct SdftProgress(int Done, int Total, int Kept);

/// <summary>The outcome of <see cref="SdftSynthesizer.Run"/>.</summary>
/// <param name="Records">The rows written so far, in dataset order (all of them when <paramref name="Completed"/>).</param>
/// <param name="Statistics">Counts per reason of <paramref name="Records"/>.</param>
/// <param name="OutputPath">The distilled JSONL file (complete) or its <c>.partial</c> file (interrupted).</param>
/// <param name="ResumedRows">Rows found from an earlier, interrupted run and not regenerated.</param>
/// <param name="Completed">Whether every row was written (false: cancelled; run again to resume).</param>
public sealed record SdftResult(IReadOnlyList<SdftRecord> Records, SdftStatistics Statistics, string OutputPath, int ResumedRows, bool Completed)
{
    /// <summary>Gets the distilled training set: every row with its <see cref="SdftRecord.Final"/> response.</summary>
    public IReadOnlyList<InstructionExample> Distilled => [.. Records.Select(r => r.ToExample())];
}

/// <summary>
/// SDFT self-distillation: the seed model rewrites every training response, conditioned on it through the task's
/// distillation template; each rewrite is kept or replaced by the original (<see cref="SdftFilter"/>), and every row is
/// written, in order, to a JSONL file (<see cref="SdftRecord"/>).
/// </summary>
/// <remarks>
/// Resumable and atomic: rows are appended batch by batch (flushed to disk) to <c>&lt;output&gt;.partial</c>, which is
/// renamed to the output path when the last batch is written; <c>&lt;output&gt;.partial.progress</c> records each complete
/// batch atomically. A new run with the same settings and data resumes after the last recorded batch (a torn or
/// half-written batch is discarded; a partial file of other settings is rejected); batch k always holds rows [k·B, (k+1)·B) and samples
/// with its own seed, so an interrupted and resumed run writes the same file as an uninterrupted one. A complete output
/// file is read back, not regenerated. Prompts are generated with <see cref="TextGenerator"/> (KV cache, left padding).
/// </remarks>
/// <param name="model">The seed model (no adapter), on its device.</param>
/// <param name="tokenizer">Its tokenizer (needs an EOS token).</param>
/// <param name="options">Generation and filter settings.</param>
/// <param name="answerCheck">The task's answer check (Distill.Eval <c>SdftAnswerChecks.For</c>); required except for general tasks.</param>
/// <param name="logger">Optional logger.</param>
public sealed class SdftSynthesizer(ICausalLM model, HfTokenizer tokenizer, SdftOptions options, ISdftAnswerCheck? answerCheck = null, ILogger? logger = null)
{
    /// <summary>The suffix of the in-progress file.</summary>
    public const string PartialSuffix = ResumableJsonlFile.PartialSuffix;

    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Gets or sets the progress sink, called after every batch.</summary>
    public IProgress<SdftProgress>? Progress { get; set; }

    /// <summary>Rewrites <paramref name="examples"/> into <paramref name="outputPath"/>, resuming an interrupted run.</summary>
    /// <param name="examples">The training rows (dataset order; the file pairs rows by index).</param>
    /// <param name="outputPath">The distilled JSONL file.</param>
    /// <param name="cancellationToken">Stops after the current batch; the partial file stays for a resume.</param>
    /// <returns>The rows and statistics.</returns>
    /// <exception cref="InvalidDataException">An existing output or partial file does not belong to this dataset, or a reference is not in the task's format.</exception>
    public SdftResult Run(IReadOnlyList<InstructionExample> examples, string outputPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        options.ThrowIfInvalid();
        var log = logger ?? NullLogger.Instance;
        var task = options.ResolveTask();
        var template = options.ResolveDistillTemplate();
        var filter = new SdftFilter(options, task.Kind, answerCheck);
        var eos = tokenizer.EosTokenId ?? throw new InvalidOperationException($"Tokenizer {tokenizer.Source} has no EOS token; SDFT generation stops on EOS.");
        var pad = tokenizer.PadTokenId ?? eos;
        var bos = tokenizer.BosTokenId is int b ? tokenizer.ConvertIdToToken(b) : null;
        var originals = examples.Select(e => SdftTemplate.PythonStrip(e.Output)).ToList();

        if (File.Exists(outputPath))
        {
            var done = ReadRecords(outputPath, File.ReadAllText(outputPath, Encoding.UTF8), originals, outputPath);
            if (done.Count != examples.Count)
            {
                throw new InvalidDataException($"{outputPath}: has {done.Count} rows but the dataset has {examples.Count}; delete it to distill again.");
            }

            return new SdftResult(done, SdftStatistics.From(done), outputPath, done.Count, true);
        }

        using var file = ResumableJsonlFile.Open(outputPath, RunKey(examples));
        var records = new List<SdftRecord>();
        if (file.ChunksDone > 0)
        {
            records.AddRange(ReadRecords(file.PartialPath, file.ReadWritten(), originals, file.PartialPath));
            Log.SdftResumed(log, file.PartialPath, records.Count, examples.Count);
        }

        var resumed = records.Count;
        Progress?.Report(new SdftProgress(records.Count, examples.Count, records.Count(r => r.Reason == SdftReason.Kept)));
        for (var start = records.Count; start < examples.Count; start += options.BatchSize)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return new SdftResult(records, SdftStatistics.From(records), file.PartialPath, resumed, false);
            }

            var count = Math.Min(options.BatchSize, examples.Count - start);
            var batch = GenerateBatch(examples, originals, start, count, template, filter, eos, pad, bos);
            file.Append(string.Concat(batch.Select(r => JsonSerializer.Serialize(r, Json) + "\n")), null);
            records.AddRange(batch);
            Progress?.Report(new SdftProgress(records.Count, examples.Count, records.Count(r => r.Reason == SdftReason.Kept)));
        }

        file.Complete();
        var statistics = SdftStatistics.From(records);
        Log.SdftFinished(log, outputPath, statistics.Total, statistics.Kept);
        return new SdftResult(records, statistics, outputPath, resumed, true);
    }

    /// <summary>The prompt ids of one row: the rendered distillation prompt, cut to <see cref="SdftOptions.CutoffLength"/> as the chosen branch does.</summary>
    internal IReadOnlyList<int> PromptIds(SdftTemplate template, InstructionExample example, string original, string? bos)
    {
        var prompt = template.Render(SdftTemplate.Query(example.Instruction, example.Input), original, options.Branch, bos);
        var ids = tokenizer.EncodeToIds(prompt, addSpecialTokens: false);
        var cutoff = options.CutoffLength;
        if (options.Branch == SdftBranch.Main)
        {
            // LLaMA-Factory main infer_max_len: the target gets its share of cutoff_len (at least 1), the source the rest.
            var target = tokenizer.EncodeToIds(original, addSpecialTokens: false).Count;
            var maxTarget = Math.Max((int)((long)cutoff * target / Math.Max(1, ids.Count + target)), 1);
            cutoff -= maxTarget;
        }

        return ids.Count > cutoff ? [.. ids.Take(cutoff)] : ids;
    }

    private List<SdftRecord> GenerateBatch(IReadOnlyList<InstructionExample> examples, List<string> originals, int start, int count, SdftTemplate template, SdftFilter filter, int eos, int pad, string? bos)
    {
        var rows = Enumerable.Range(start, count).Select(i => PromptIds(template, examples[i], originals[i], bos)).ToList();
        var generated = LeftPaddedGeneration.Generate(model, rows, pad, new GenerationOptions
        {
            MaxNewTokens = options.MaxNewTokens,
            DoSample = options.DoSample,
            Temperature = options.Temperature,
            TopK = options.TopK,
            TopP = options.TopP,
            Seed = ((long)options.Seed * 100003) + (start / options.BatchSize),
            EosTokenIds = [eos],
            PadTokenId = pad,
        });
        var records = new List<SdftRecord>(count);
        for (var r = 0; r < count; r++)
        {
            var index = start + r;
            var rewrite = SdftTemplate.PythonStrip(tokenizer.Decode(generated[r].Tokens, skipSpecialTokens: true));
            var truncated = !generated[r].Stopped;
            var example = examples[index];
            SdftReason reason;
            try
            {
                reason = filter.Classify(originals[index], rewrite, truncated);
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"Row {index}: {ex.Message}", ex);
            }

            records.Add(new SdftRecord(
                index,
                SdftTemplate.PythonStrip(example.Instruction),
                SdftTemplate.PythonStrip(example.Input),
                originals[index],
                rewrite,
                reason == SdftReason.Kept ? rewrite : originals[index],
                reason));
        }

        return records;
    }

    /// <summary>The resume key: the settings that decide a row's bytes, and the dataset.</summary>
    private string RunKey(IReadOnlyList<InstructionExample> examples)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(options, Json) + "\n"));
        foreach (var e in examples)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(e, Json) + "\n"));
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static List<SdftRecord> ReadRecords(string path, string text, List<string> originals, string label)
    {
        var lines = text.Split('\n');
        var records = new List<SdftRecord>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Length == 0)
            {
                continue;
            }

            SdftRecord? record;
            try
            {
                record = JsonSerializer.Deserialize<SdftRecord>(line, Json);
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"{label}:{i + 1}: not an SDFT row ({ex.Message}).", ex);
            }

            if (record is null || record.Index != records.Count || records.Count >= originals.Count || record.Original != originals[records.Count])
            {
                throw new InvalidDataException($"{path}:{i + 1}: row {records.Count} does not match the dataset (different data or order); delete the file to distill again.");
            }

            records.Add(record);
        }

        return records;
    }
}
