using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Distill.Data;
using Distill.Data.Synthesis;
using Distill.Models;
using Microsoft.Extensions.Logging;

namespace Distill.Quickstart;

/// <summary>
/// The teacher's greedy answers to the unlabelled prompts (SeqKD, <see cref="SeqKdGenerator"/>), cached in the run folder as
/// JSONL under a name keyed by the teacher's files, the prompts and the generation settings (a changed teacher or setting
/// writes a new file; an interrupted generation resumes).
/// </summary>
internal sealed record TeacherAnswers(IReadOnlyList<TextExample> Examples, string Path, bool FromCache, SeqKdStatistics Statistics, double ExactMatchOnHiddenAnswers)
{
    /// <summary>Loads the cached answers or generates them.</summary>
    /// <param name="teacher">The teacher.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="teacherDir">Its folder (hashed into the cache key).</param>
    /// <param name="prompts">The unlabelled prompts (their hidden answers are only used to report the teacher's accuracy on them).</param>
    /// <param name="settings">Generation length, template, run folder.</param>
    /// <param name="loggers">Loggers.</param>
    /// <param name="progress">Progress (batches).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>The answered prompts.</returns>
    public static TeacherAnswers LoadOrGenerate(CausalLM teacher, HfTokenizer tokenizer, string teacherDir, IReadOnlyList<TextExample> prompts, QuickstartSettings settings, ILoggerFactory loggers, Action<(int Done, int Total)> progress, CancellationToken cancellationToken)
    {
        var key = CacheKey(teacherDir, prompts, settings);
        var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(settings.OutputDirectory, $"teacher-answers-{key}.jsonl"));
        var fromCache = File.Exists(path);
        var generator = new SeqKdGenerator(teacher, tokenizer, new SeqKdOptions
        {
            TeacherName = System.IO.Path.GetFileName(teacherDir),
            MaxNewTokens = settings.MaxNewTokens,
            BatchSize = 50,
            ChunkSize = 200,
            Seed = settings.Seed,
            MaxPromptTokens = settings.MaxLength / 2,
            EmptyAnswers = SeqKdRowAction.Drop, // an empty answer teaches nothing; dropped and counted
            TruncatedAnswers = SeqKdRowAction.Keep,
        }, loggers.CreateLogger<SeqKdGenerator>())
        {
            Progress = new SyncProgress<SeqKdProgress>(p => progress((p.PromptsDone, p.PromptsTotal))),
        };
        var result = generator.Run(prompts, path, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        var examples = SeqKdDataset.Read(result.OutputPath).ToTextExamples();
        var correct = result.Records.Count(r => r.TeacherOutput.Trim() == r.Output.Trim());
        return new TeacherAnswers(examples, result.OutputPath, fromCache, result.Statistics, prompts.Count == 0 ? 0 : 100.0 * correct / prompts.Count);
    }

    private static string CacheKey(string teacherDir, IReadOnlyList<TextExample> prompts, QuickstartSettings settings)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json" })
        {
            var full = System.IO.Path.Combine(teacherDir, file);
            if (File.Exists(full))
            {
                sha.AppendData(File.ReadAllBytes(full));
            }
        }

        sha.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"greedy|{settings.MaxNewTokens}|{settings.MaxLength}|{settings.Template}\n")));
        foreach (var p in prompts)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(p.Prompt + "\n"));
        }

        return Convert.ToHexString(sha.GetHashAndReset())[..12].ToLowerInvariant();
    }
}

/// <summary>An <see cref="IProgress{T}"/> that calls back on the reporting thread (<see cref="Progress{T}"/> posts to the thread pool).</summary>
/// <typeparam name="T">The progress value.</typeparam>
/// <param name="report">The callback.</param>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}
