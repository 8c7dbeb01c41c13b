using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Distill.Data;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.IO;
using Distill.Models;
using Microsoft.Extensions.Logging;

namespace Distill.Quickstart;

/// <summary>
/// The teacher's greedy answers to the unlabelled prompts, cached in the run folder as JSONL under a name keyed by the
/// teacher's files, the prompts and the generation settings (a changed teacher or setting writes a new file).
/// </summary>
internal sealed record TeacherAnswers(IReadOnlyList<TextExample> Examples, string Path, bool FromCache, double ExactMatchOnHiddenAnswers)
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
        var prefix = InstructionTemplate.FromName(settings.Template).ResponsePrefix;
        if (File.Exists(path))
        {
            var cached = Read(path, prompts);
            return new TeacherAnswers(cached, path, true, ExactMatch(cached, prompts));
        }

        var set = TokenizedDataset.Create(prompts, tokenizer, null, settings.MaxLength, settings.MaxLength / 2);
        var eos = TokenizedDataset.PadId(tokenizer);
        progress((0, 1));
        var report = GenerationEvaluation.Evaluate(teacher, set, [new DskdExactMatchMetric()], new GenerationEvaluationOptions
        {
            Seeds = [settings.Seed],
            BatchSize = 50,
            StopText = null,
            Generation = new GenerationOptions { MaxNewTokens = settings.MaxNewTokens, EosTokenIds = [eos], PadTokenId = eos },
        }, loggers.CreateLogger<SeededEvaluator>(), cancellationToken);
        progress((1, 1));
        var answers = set.Examples.Zip(report.Runs[0].Predictions)
            .Where(x => x.Second.Prediction.Length > 0) // an empty answer teaches nothing: dropped (and counted in the file's size)
            .Select(x => new TextExample(x.First.Prompt, prefix + x.Second.Prediction)).ToList();
        var sb = new StringBuilder();
        foreach (var a in answers)
        {
            sb.AppendLine(JsonSerializer.Serialize(new AnswerLine(a.Prompt, a.Response)));
        }

        AtomicFile.WriteAllText(path, sb.ToString());
        return new TeacherAnswers(answers, path, false, report.Metrics[DskdExactMatchMetric.MetricName].Mean);
    }

    private static List<TextExample> Read(string path, IReadOnlyList<TextExample> prompts)
    {
        var known = new HashSet<string>(prompts.Select(p => p.Prompt), StringComparer.Ordinal);
        var result = new List<TextExample>();
        var n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            var a = JsonSerializer.Deserialize<AnswerLine>(line) ?? throw new InvalidDataException($"{path}:{n}: not a prompt/response line.");
            if (a.Prompt is null || a.Response is null || !known.Contains(a.Prompt))
            {
                throw new InvalidDataException($"{path}:{n}: missing prompt/response, or a prompt that is not one of the unlabelled prompts.");
            }

            result.Add(new TextExample(a.Prompt, a.Response));
        }

        return result;
    }

    private static double ExactMatch(IReadOnlyList<TextExample> answers, IReadOnlyList<TextExample> prompts)
    {
        var gold = prompts.GroupBy(p => p.Prompt, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Response, StringComparer.Ordinal);
        return prompts.Count == 0 ? 0 : 100.0 * answers.Count(a => gold[a.Prompt].Trim() == a.Response.Trim()) / prompts.Count;
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

    private sealed record AnswerLine(string? Prompt, string? Response);
}
