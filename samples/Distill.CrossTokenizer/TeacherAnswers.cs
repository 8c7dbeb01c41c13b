using System.Security.Cryptography;
using System.Text;
using Distill.Data;
using Distill.Data.Synthesis;
using Distill.Models;

namespace Distill.CrossTokenizer;

/// <summary>
/// The SeqKD step: the teacher answers the unlabelled prompts greedily on its own tokenizer (Distill.Data's
/// <see cref="SeqKdGenerator"/>: left-padded batches, KV cache, resumable JSONL with a manifest). The file goes into the run
/// folder, named by a hash of the teacher's files, the prompts and the decoding settings, so a later run with the same
/// inputs reads it back instead of generating again. Answers cut at the token limit and empty answers are dropped and
/// counted.
/// </summary>
public static class TeacherAnswers
{
    /// <summary>Loads the cached answers or generates and caches them.</summary>
    /// <param name="teacher">The teacher.</param>
    /// <param name="teacherDirectory">The teacher's HF folder (its files are part of the cache key).</param>
    /// <param name="tokenizer">The teacher's tokenizer.</param>
    /// <param name="prompts">The prompts; their outputs are never given to the generator (the prompts are unlabelled).</param>
    /// <param name="cacheDirectory">The folder of the cache files.</param>
    /// <param name="cancellationToken">Stops after the current chunk (a later run resumes the file).</param>
    /// <returns>The generator's result (rows written, statistics, file) and whether the file existed before this call.</returns>
    public static (SeqKdResult Result, bool FromCache) LoadOrGenerate(
        CausalLM teacher, string teacherDirectory, HfTokenizer tokenizer, IReadOnlyList<InstructionExample> prompts, string cacheDirectory, CancellationToken cancellationToken = default)
    {
        var options = new SeqKdOptions
        {
            Template = "compact",
            TeacherName = Path.GetFileName(Path.TrimEndingDirectorySeparator(teacherDirectory)),
            MaxNewTokens = Scoring.MaxNewTokens,
            DoSample = false,
            BatchSize = 100,
            ChunkSize = 500,
            MaxPromptTokens = Models.MaxPromptLength,
            TruncatedAnswers = SeqKdRowAction.Drop,
            EmptyAnswers = SeqKdRowAction.Drop,
            OverlongPrompts = SeqKdRowAction.Throw,
        };
        var path = Path.Combine(cacheDirectory, $"teacher-answers-{Key(teacherDirectory, prompts, options)}.jsonl");
        var existed = File.Exists(path);
        Directory.CreateDirectory(cacheDirectory);
        var unlabelled = prompts.Select(p => new InstructionExample(p.Instruction, p.Input, string.Empty) { Task = p.Task }).ToList();
        var result = new SeqKdGenerator(teacher, tokenizer, options).Run(unlabelled, path, cancellationToken);
        if (!result.Completed)
        {
            throw new OperationCanceledException($"Cancelled while the teacher answered the prompts; {result.OutputPath} resumes on the next run.");
        }

        return (result, existed);
    }

    /// <summary>SHA-256 (first 16 hex digits) of the teacher's weights, config and tokenizer, the prompts and the decoding settings.</summary>
    private static string Key(string teacherDirectory, IReadOnlyList<InstructionExample> prompts, SeqKdOptions o)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json" })
        {
            var full = Path.Combine(teacherDirectory, file);
            hash.AppendData(File.Exists(full) ? File.ReadAllBytes(full) : Encoding.UTF8.GetBytes("missing:" + file));
        }

        hash.AppendData(Encoding.UTF8.GetBytes($"{o.Template}|{o.MaxNewTokens}|{o.DoSample}|{o.MaxPromptTokens}|{o.TruncatedAnswers}|{o.EmptyAnswers}\n"));
        foreach (var p in prompts)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(p.Instruction + "\u0000" + p.Input + "\n"));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }
}
