using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Distill.Generation;
using Distill.IO;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Data.Synthesis;

/// <summary>Progress of a SeqKD run, reported after every chunk.</summary>
/// <param name="PromptsDone">Prompts processed (resumed ones included).</param>
/// <param name="PromptsTotal">Prompts in the dataset.</param>
/// <param name="RowsWritten">Rows written so far.</param>
/// <param name="TokensPerSecond">Generated tokens per second in this run (resumed chunks excluded; 0 before the first generated chunk).</param>
public readonly record struct SeqKdProgress(int PromptsDone, int PromptsTotal, int RowsWritten, double TokensPerSecond);

/// <summary>The outcome of <see cref="SeqKdGenerator"/>.</summary>
/// <param name="Records">The rows written so far, in file order (all of them when <paramref name="Completed"/>).</param>
/// <param name="Statistics">The counts of the prompts processed so far.</param>
/// <param name="OutputPath">The JSONL file (complete) or its <c>.partial</c> file (interrupted).</param>
/// <param name="ManifestPath">The manifest (written when the run completes).</param>
/// <param name="ResumedChunks">Chunks found complete from an earlier run (all of them when the file already existed).</param>
/// <param name="Completed">Whether every prompt was processed (false: cancelled; run again to resume).</param>
public sealed record SeqKdResult(IReadOnlyList<SeqKdRecord> Records, SeqKdStatistics Statistics, string OutputPath, string ManifestPath, int ResumedChunks, bool Completed);

/// <summary>
/// SeqKD (sequence-level knowledge distillation, Kim &amp; Rush 2016): the teacher answers every prompt of a dataset
/// (greedy or sampled, k answers per prompt), and the student is trained on the answers with any objective. This is also
/// how ULD builds its teacher-answer datasets. Answers go to a JSONL file in ATKD's row format (<see cref="SeqKdRecord"/>)
/// with a manifest of the teacher, tokenizer, template, settings, seed and dataset (<see cref="SeqKdManifest"/>); read it
/// back with <see cref="SeqKdDataset.Read"/>.
/// </summary>
/// <remarks>
/// Prompts are processed in chunks of <see cref="SeqKdOptions.ChunkSize"/>; each chunk's (prompt × sample) rows are decoded
/// in left-padded batches of <see cref="SeqKdOptions.BatchSize"/> by <see cref="TextGenerator"/> (key/value cache). A chunk
/// is appended and recorded atomically; a cancelled or crashed run resumes after the last complete chunk, and because
/// batch b of chunk c samples with a generator seeded from (seed, c, b), the resumed file has the same bytes as an
/// uninterrupted run. A complete file whose manifest matches the settings is read back, not regenerated.
/// </remarks>
/// <param name="teacher">The teacher, on its device.</param>
/// <param name="tokenizer">The teacher's tokenizer (needs an EOS token).</param>
/// <param name="options">Generation settings.</param>
/// <param name="logger">Optional logger (resume, per-chunk throughput, summary).</param>
public sealed class SeqKdGenerator(ICausalLM teacher, HfTokenizer tokenizer, SeqKdOptions options, ILogger? logger = null)
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions IndentedJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = true };

    /// <summary>Gets or sets the progress sink, called after every chunk.</summary>
    public IProgress<SeqKdProgress>? Progress { get; set; }

    /// <summary>Generates answers to instruction examples rendered with <see cref="SeqKdOptions.Template"/>, resuming an interrupted run.</summary>
    /// <param name="examples">The prompts (their <see cref="InstructionExample.Output"/> is kept as the row's <c>output</c>).</param>
    /// <param name="outputPath">The JSONL file to write.</param>
    /// <param name="cancellationToken">Stops after the current chunk; the partial file stays for a resume.</param>
    /// <returns>The rows and statistics.</returns>
    /// <exception cref="InvalidDataException">An existing file was made with other settings or data, a prompt is empty, or a Throw policy fired.</exception>
    public SeqKdResult Run(IReadOnlyList<InstructionExample> examples, string outputPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(examples);
        options.ThrowIfInvalid();
        var template = options.ResolveTemplate();
        var prompts = examples.Select((e, i) => new Prompt(template.Render(e), e.Output, e.Instruction, e.Input, e.Task)).ToList();
        return Run(prompts, "instruction", template, outputPath, cancellationToken);
    }

    /// <summary>Generates answers to text prompts (used as given; <see cref="SeqKdOptions.Template"/> is not applied), resuming an interrupted run.</summary>
    /// <param name="prompts">The prompts (their <see cref="TextExample.Response"/> is kept as the row's <c>output</c>).</param>
    /// <param name="outputPath">The JSONL file to write.</param>
    /// <param name="cancellationToken">Stops after the current chunk; the partial file stays for a resume.</param>
    /// <returns>The rows and statistics.</returns>
    /// <exception cref="InvalidDataException">An existing file was made with other settings or data, a prompt is empty, or a Throw policy fired.</exception>
    public SeqKdResult Run(IReadOnlyList<TextExample> prompts, string outputPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        options.ThrowIfInvalid();
        return Run([.. prompts.Select(p => new Prompt(p.Prompt, p.Response, null, null, null))], "text", null, outputPath, cancellationToken);
    }

    private SeqKdResult Run(List<Prompt> prompts, string source, InstructionTemplate? template, string outputPath, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        var log = logger ?? NullLogger.Instance;
        var eos = tokenizer.EosTokenId ?? throw new InvalidOperationException($"Tokenizer {tokenizer.Source} has no EOS token; SeqKD generation stops on EOS.");
        var pad = tokenizer.PadTokenId ?? eos;
        if (options.PrependBos && tokenizer.BosTokenId is null)
        {
            throw new InvalidOperationException($"{nameof(SeqKdOptions)}.{nameof(SeqKdOptions.PrependBos)} is set but tokenizer {tokenizer.Source} has no BOS token.");
        }

        tokenizer.CheckModelVocabSize(teacher.Config.VocabSize, "the teacher");
        var maxPrompt = options.MaxPromptTokens ?? (teacher.Config.MaxPositionEmbeddings - options.MaxNewTokens);
        if (maxPrompt < 1)
        {
            throw new ArgumentException($"The teacher's max_position_embeddings ({teacher.Config.MaxPositionEmbeddings}) leaves no room for a prompt after {nameof(SeqKdOptions.MaxNewTokens)} = {options.MaxNewTokens}.");
        }

        var identity = new SeqKdManifest
        {
            Teacher = options.TeacherName ?? teacher.Config.ModelType,
            TeacherConfigHash = TeacherHash(teacher),
            TokenizerHash = TeacherCacheHashes.Tokenizer(tokenizer),
            Source = source,
            Template = template?.Name,
            ResponsePrefix = template?.ResponsePrefix ?? string.Empty,
            Generation = new SeqKdGenerationSettings
            {
                MaxNewTokens = options.MaxNewTokens,
                DoSample = options.DoSample,
                Temperature = options.Temperature,
                TopK = options.TopK,
                TopP = options.TopP,
                NumSamples = options.NumSamples,
                BatchSize = options.BatchSize,
                ChunkSize = options.ChunkSize,
                Seed = options.Seed,
                PrependBos = options.PrependBos,
                MaxPromptTokens = maxPrompt,
                FirstLineOnly = options.FirstLineOnly,
                EosTokenId = eos,
                TruncatedAnswers = options.TruncatedAnswers,
                EmptyAnswers = options.EmptyAnswers,
                OverlongPrompts = options.OverlongPrompts,
            },
            Prompts = prompts.Count,
            DatasetHash = DatasetHash(prompts),
        };
        var runKey = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(identity, Json))));
        var manifestPath = SeqKdDataset.ManifestPath(outputPath);
        var chunkCount = (prompts.Count + options.ChunkSize - 1) / options.ChunkSize;

        if (File.Exists(outputPath))
        {
            var existing = SeqKdDataset.Read(outputPath);
            if (JsonSerializer.Serialize(existing.Manifest with { Statistics = null, Rows = 0, FileSha256 = null }, Json) != JsonSerializer.Serialize(identity, Json))
            {
                throw new InvalidDataException($"{outputPath}: was generated with another teacher, tokenizer, template, settings or dataset (see {manifestPath}); delete it to generate again.");
            }

            return new SeqKdResult(existing.Records, existing.Manifest.Statistics ?? new SeqKdStatistics(), outputPath, manifestPath, chunkCount, true);
        }

        using var file = ResumableJsonlFile.Open(outputPath, runKey);
        var records = new List<SeqKdRecord>();
        if (file.ChunksDone > 0)
        {
            records.AddRange(SeqKdDataset.ParseRows(file.PartialPath, file.ReadWritten(), identity));
            Log.SeqKdResumed(log, file.PartialPath, file.ChunksDone, chunkCount);
        }

        var statistics = file.State is { } state ? JsonSerializer.Deserialize<SeqKdStatistics>(state, Json)! : new SeqKdStatistics();
        var clock = Stopwatch.StartNew();
        long runTokens = 0;
        for (var chunk = file.ChunksDone; chunk < chunkCount; chunk++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return new SeqKdResult(records, statistics, file.PartialPath, manifestPath, file.ResumedChunks, false);
            }

            var chunkClock = Stopwatch.StartNew();
            var start = chunk * options.ChunkSize;
            var count = Math.Min(options.ChunkSize, prompts.Count - start);
            var (rows, counts) = GenerateChunk(prompts, chunk, start, count, maxPrompt, eos, pad);
            statistics = statistics.Add(counts);
            file.Append(string.Concat(rows.Select(r => JsonSerializer.Serialize(r, Json) + "\n")), JsonSerializer.Serialize(statistics, Json));
            records.AddRange(rows);
            runTokens += counts.GeneratedTokens;
            var rate = runTokens / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            Log.SeqKdChunkWritten(log, chunk + 1, chunkCount, rows.Count, counts.GeneratedTokens, counts.GeneratedTokens / Math.Max(chunkClock.Elapsed.TotalSeconds, 1e-9), rate);
            Progress?.Report(new SeqKdProgress(start + count, prompts.Count, records.Count, rate));
        }

        if (file.ChunksDone == 0)
        {
            Progress?.Report(new SeqKdProgress(prompts.Count, prompts.Count, records.Count, 0)); // empty dataset
        }

        var manifest = identity with
        {
            Statistics = statistics,
            Rows = records.Count,
            FileSha256 = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(file.ReadWritten()))),
        };
        AtomicFile.WriteAllText(manifestPath, JsonSerializer.Serialize(manifest, IndentedJson) + "\n");
        file.Complete();
        Log.SeqKdFinished(log, outputPath, records.Count, statistics.ToString());
        return new SeqKdResult(records, statistics, outputPath, manifestPath, file.ResumedChunks, true);
    }

    private (List<SeqKdRecord> Rows, SeqKdStatistics Counts) GenerateChunk(List<Prompt> prompts, int chunk, int start, int count, int maxPrompt, int eos, int pad)
    {
        var overlong = 0;
        var jobs = new List<(int Index, int Sample, IReadOnlyList<int> Ids)>();
        for (var i = start; i < start + count; i++)
        {
            IReadOnlyList<int> ids = tokenizer.EncodeToIds(prompts[i].Text, addSpecialTokens: false);
            if (options.PrependBos)
            {
                ids = [tokenizer.BosTokenId!.Value, .. ids];
            }

            if (ids.Count == 0)
            {
                throw new InvalidDataException($"Example {i}: the prompt is empty (no tokens); there is nothing to continue.");
            }

            if (ids.Count > maxPrompt)
            {
                if (options.OverlongPrompts == SeqKdRowAction.Throw)
                {
                    throw new InvalidDataException($"Example {i}: the prompt has {ids.Count} tokens, more than the limit of {maxPrompt} ({nameof(SeqKdOptions)}.{nameof(SeqKdOptions.MaxPromptTokens)} or max_position_embeddings − max_new_tokens).");
                }

                overlong++;
                continue;
            }

            for (var s = 0; s < options.NumSamples; s++)
            {
                jobs.Add((i, s, ids));
            }
        }

        var rows = new List<SeqKdRecord>(jobs.Count);
        int truncated = 0, truncatedDropped = 0, empty = 0, emptyDropped = 0;
        long tokens = 0;
        for (var b = 0; b * options.BatchSize < jobs.Count; b++)
        {
            var batch = jobs.Skip(b * options.BatchSize).Take(options.BatchSize).ToList();
            var generated = LeftPaddedGeneration.Generate(teacher, [.. batch.Select(j => j.Ids)], pad, new GenerationOptions
            {
                MaxNewTokens = options.MaxNewTokens,
                DoSample = options.DoSample,
                Temperature = options.Temperature,
                TopK = options.TopK,
                TopP = options.TopP,
                Seed = BatchSeed(options.Seed, chunk, b),
                EosTokenIds = [eos],
                PadTokenId = pad,
            });
            for (var r = 0; r < batch.Count; r++)
            {
                var (index, sample, _) = batch[r];
                var row = generated[r];
                tokens += row.Tokens.Length;
                var text = tokenizer.Decode(row.Tokens, skipSpecialTokens: true);
                if (options.FirstLineOnly && text.IndexOf('\n', StringComparison.Ordinal) is var nl and >= 0)
                {
                    text = text[..nl];
                }

                if (!row.Stopped)
                {
                    truncated++;
                    if (!Allow(options.TruncatedAnswers, index, sample, $"the answer reached {nameof(SeqKdOptions.MaxNewTokens)} = {options.MaxNewTokens} without EOS"))
                    {
                        truncatedDropped++;
                        continue;
                    }
                }

                if (string.IsNullOrWhiteSpace(text))
                {
                    empty++;
                    if (!Allow(options.EmptyAnswers, index, sample, "the answer is empty"))
                    {
                        emptyDropped++;
                        continue;
                    }
                }

                var p = prompts[index];
                rows.Add(new SeqKdRecord(index, sample, p.Text, text, p.Output, row.Stopped ? SeqKdFinishReason.Eos : SeqKdFinishReason.Length, row.Tokens.Length)
                {
                    SourceInstruction = p.Instruction,
                    Input = p.Input,
                    Task = p.Task,
                });
            }
        }

        return (rows, new SeqKdStatistics
        {
            Prompts = count,
            OverlongPrompts = overlong,
            Generated = jobs.Count,
            Truncated = truncated,
            TruncatedDropped = truncatedDropped,
            Empty = empty,
            EmptyDropped = emptyDropped,
            Written = rows.Count,
            GeneratedTokens = tokens,
        });
    }

    private static bool Allow(SeqKdRowAction action, int index, int sample, string what) => action switch
    {
        SeqKdRowAction.Keep => true,
        SeqKdRowAction.Drop => false,
        _ => throw new InvalidDataException($"Example {index}, sample {sample}: {what} (the policy is Throw)."),
    };

    /// <summary>The sampling seed of batch <paramref name="batch"/> of chunk <paramref name="chunk"/>: SplitMix64 over (seed, chunk, batch).</summary>
    internal static long BatchSeed(int seed, int chunk, int batch)
    {
        var x = SplitMix((ulong)(uint)seed);
        x = SplitMix(x ^ (ulong)(uint)chunk);
        x = SplitMix(x ^ (ulong)(uint)batch);
        return (long)(x >> 1);
    }

    private static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static string DatasetHash(List<Prompt> prompts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> n = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(n, prompts.Count);
        sha.AppendData(n);
        foreach (var p in prompts)
        {
            foreach (var text in new[] { p.Text, p.Output })
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                BinaryPrimitives.WriteInt64LittleEndian(n, bytes.Length);
                sha.AppendData(n);
                sha.AppendData(bytes);
            }
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Hashes the teacher's config fields, every parameter's name, shape and dtype, and its first 64 values (a cheap weight fingerprint).</summary>
    private static string TeacherHash(ICausalLM model)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var c = model.Config;
        sha.AppendData(Encoding.UTF8.GetBytes($"{c.ModelType}|{c.VocabSize}|{c.HiddenSize}|{c.NumHiddenLayers}|{c.NumAttentionHeads}|{c.MaxPositionEmbeddings}|{c.TieWordEmbeddings}|{c.BosTokenId}|{string.Join(",", c.EosTokenIds)}|{c.PadTokenId}\n"));
        using var scope = NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        foreach (var (name, parameter) in model.Module.named_parameters())
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"{name}|{string.Join(",", parameter.shape)}|{parameter.dtype}\n"));
            var head = parameter.detach().flatten();
            head = head.narrow(0, 0, Math.Min(64, head.shape[0])).to_type(ScalarType.Float32).cpu();
            sha.AppendData(MemoryMarshalBytes(head.data<float>().ToArray()));
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static byte[] MemoryMarshalBytes(float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        return bytes;
    }

    private sealed record Prompt(string Text, string Output, string? Instruction, string? Input, string? Task);
}
