using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Distill.Data;
using Distill.Generation;
using Distill.IO;
using Distill.Models;
using static TorchSharp.torch;

namespace Distill.CrossTokenizer;

/// <summary>One teacher answer of the SeqKD file: the prompt's instruction row with the teacher's greedy answer as output.</summary>
/// <param name="Instruction">The instruction.</param>
/// <param name="Input">The input.</param>
/// <param name="Output">The teacher's answer (decoded, special tokens skipped, surrounding white space trimmed).</param>
/// <param name="Task">The bundled task family.</param>
/// <param name="Teacher">The teacher folder's name.</param>
/// <param name="Stopped">Whether the teacher emitted EOS within the token budget (rows that did not are not trained on).</param>
public sealed record TeacherAnswer(string Instruction, string Input, string Output, string? Task, string Teacher, bool Stopped)
{
    /// <summary>Gets the decoding (greedy).</summary>
    public string Decoding { get; init; } = "greedy";

    /// <summary>Gets the token budget of the answer.</summary>
    public int MaxNewTokens { get; init; } = Scoring.MaxNewTokens;
}

/// <summary>
/// The SeqKD step: the teacher answers the unlabelled prompts (greedy, on its own tokenizer, batched with left padding and
/// the KV cache), and the answers are written as JSONL into the run folder, named by a hash of the teacher's files, the
/// prompts and the decoding settings, so a later run with the same inputs reuses them.
/// </summary>
public static class TeacherAnswers
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Loads the cached answers or generates and caches them.</summary>
    /// <param name="teacher">The teacher.</param>
    /// <param name="teacherDirectory">The teacher's HF folder (its files are part of the cache key).</param>
    /// <param name="tokenizer">The teacher's tokenizer.</param>
    /// <param name="prompts">The prompts (their outputs are ignored).</param>
    /// <param name="cacheDirectory">The folder of the cache files.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>One answer per prompt, in order, the cache file, and whether it came from the cache.</returns>
    public static (IReadOnlyList<TeacherAnswer> Answers, string Path, bool FromCache) LoadOrGenerate(
        CausalLM teacher, string teacherDirectory, HfTokenizer tokenizer, IReadOnlyList<InstructionExample> prompts, string cacheDirectory, CancellationToken cancellationToken = default)
    {
        var path = System.IO.Path.Combine(cacheDirectory, $"teacher-answers-{Key(teacherDirectory, prompts)}.jsonl");
        if (File.Exists(path))
        {
            var cached = File.ReadLines(path).Where(l => l.Length > 0).Select((l, i) =>
                JsonSerializer.Deserialize<TeacherAnswer>(l, Json) ?? throw new InvalidDataException($"{path}: line {i + 1} is null.")).ToList();
            if (cached.Count == prompts.Count && cached.Zip(prompts).All(p => p.First.Instruction == p.Second.Instruction && p.First.Input == p.Second.Input))
            {
                return (cached, path, true);
            }
        }

        var answers = Generate(teacher, System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(teacherDirectory)), tokenizer, prompts, cancellationToken);
        Directory.CreateDirectory(cacheDirectory);
        AtomicFile.WriteAllText(path, string.Concat(answers.Select(a => JsonSerializer.Serialize(a, Json) + "\n")));
        return (answers, path, false);
    }

    private static List<TeacherAnswer> Generate(CausalLM teacher, string teacherName, HfTokenizer tokenizer, IReadOnlyList<InstructionExample> prompts, CancellationToken cancellationToken)
    {
        var template = InstructionTemplate.Compact;
        var set = TokenizedDataset.Create(prompts.Select(template.Apply), tokenizer, null, Models.MaxLength, Models.MaxPromptLength);
        var eos = TokenizedDataset.PadId(tokenizer);
        var options = new GenerationOptions { MaxNewTokens = Scoring.MaxNewTokens, EosTokenIds = [eos], PadTokenId = eos };
        var answers = new List<TeacherAnswer>(prompts.Count);
        using var noGrad = no_grad();
        teacher.eval();
        for (var start = 0; start < prompts.Count; start += 100)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var indices = Enumerable.Range(start, Math.Min(100, prompts.Count - start)).ToList();
            using var batch = set.CollatePrompts(indices);
            using var generated = TextGenerator.Generate(teacher, batch.InputIds, batch.AttentionMask, options);
            var ids = generated.GeneratedIds.cpu();
            for (var b = 0; b < indices.Count; b++)
            {
                var text = tokenizer.Decode(ids[b, ..(int)generated.Lengths[b]].data<long>().Select(i => (int)i), skipSpecialTokens: true).Trim();
                var p = prompts[indices[b]];
                answers.Add(new TeacherAnswer(p.Instruction, p.Input, text, p.Task, teacherName, generated.Stopped[b]));
            }
        }

        return answers;
    }

    /// <summary>SHA-256 (first 16 hex digits) of the teacher's weights, config and tokenizer, the prompts and the decoding settings.</summary>
    private static string Key(string teacherDirectory, IReadOnlyList<InstructionExample> prompts)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json" })
        {
            var full = System.IO.Path.Combine(teacherDirectory, file);
            hash.AppendData(File.Exists(full) ? File.ReadAllBytes(full) : Encoding.UTF8.GetBytes("missing:" + file));
        }

        hash.AppendData(Encoding.UTF8.GetBytes($"greedy|{Scoring.MaxNewTokens}|{Models.MaxLength}|{Models.MaxPromptLength}|compact\n"));
        foreach (var p in prompts)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(p.Instruction + "\u0000" + p.Input + "\n"));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }
}
