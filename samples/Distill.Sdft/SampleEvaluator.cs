using Distill.Data;
using Distill.Data.Synthesis;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.Models;
using static TorchSharp.torch;

namespace Distill.Sdft;

/// <summary>
/// The sample's evaluation glue (kept small and internal so a library evaluation helper can replace it): greedy answers to the
/// training-template prompts, scored with the task's official check and a general metric.
/// </summary>
internal sealed class SampleEvaluator(HfTokenizer tokenizer, SdftTemplate template, SdftBranch branch, string? bos, SdftTaskKind kind, bool bundled, int maxNewTokens, int batchSize)
{
    public SdftTemplate TrainTemplate => template;

    public string TaskMetricName => kind switch
    {
        SdftTaskKind.Math => "task accuracy (check_math)",
        SdftTaskKind.OpenFunction => "task score (check_openfunction)",
        SdftTaskKind.Code => "task pass rate (check_magicoder)",
        _ => "task ROUGE-L",
    };

    public string GeneralMetricName => bundled ? "general answer accuracy" : "general ROUGE-L";

    /// <summary>The task metric (×100) of greedy answers.</summary>
    public double TaskScore(CausalLM model, IReadOnlyList<InstructionExample> rows, CancellationToken cancellationToken)
    {
        var answers = Generate(model, rows, cancellationToken);
        return 100 * rows.Select((r, i) => kind switch
        {
            SdftTaskKind.Math => SdftAnswerChecks.CheckMath(r.Output, answers[i]) ? 1.0 : 0.0,
            SdftTaskKind.OpenFunction => SdftAnswerChecks.CheckOpenFunction(r.Output, answers[i], branch),
            SdftTaskKind.Code => SdftAnswerChecks.CheckMagicoder(answers[i]) ? 1.0 : 0.0,
            _ => RougeL.Score(r.Output, answers[i]).FMeasure,
        }).DefaultIfEmpty(0).Average();
    }

    /// <summary>
    /// The general metric (×100): on the bundled data the share of answers whose content equals the reference (the seed model's
    /// "The answer is X." or a bare "X"); on user data ROUGE-L F against the reference.
    /// </summary>
    public double GeneralScore(CausalLM model, IReadOnlyList<InstructionExample> rows, CancellationToken cancellationToken)
    {
        var answers = Generate(model, rows, cancellationToken);
        return 100 * rows.Select((r, i) => bundled
            ? (AnswerContent(answers[i]) == r.Output ? 1.0 : 0.0)
            : RougeL.Score(r.Output, answers[i]).FMeasure).DefaultIfEmpty(0).Average();
    }

    /// <summary>The content of a bundled answer: the text after "The answer is " without the final ".", or the whole answer.</summary>
    internal static string AnswerContent(string answer)
    {
        const string Lead = "The answer is ";
        var text = answer.Trim();
        if (text.StartsWith(Lead, StringComparison.Ordinal))
        {
            text = text[Lead.Length..];
            if (text.EndsWith('.'))
            {
                text = text[..^1];
            }
        }

        return text;
    }

    private List<string> Generate(CausalLM model, IReadOnlyList<InstructionExample> rows, CancellationToken cancellationToken)
    {
        var eos = tokenizer.EosTokenId ?? throw new InvalidOperationException($"Tokenizer {tokenizer.Source} has no EOS token.");
        var pad = tokenizer.PadTokenId ?? eos;
        var answers = new List<string>(rows.Count);
        for (var start = 0; start < rows.Count && !cancellationToken.IsCancellationRequested; start += batchSize)
        {
            var prompts = rows.Skip(start).Take(batchSize)
                .Select(r => tokenizer.EncodeToIds(template.Render(SdftTemplate.Query(r.Instruction, r.Input), r.Output, branch, bos), addSpecialTokens: false))
                .ToList();
            var width = prompts.Max(p => p.Count);
            var ids = new long[prompts.Count * width];
            var mask = new long[prompts.Count * width];
            for (var b = 0; b < prompts.Count; b++)
            {
                var offset = width - prompts[b].Count;
                for (var t = 0; t < width; t++)
                {
                    ids[(b * width) + t] = t < offset ? pad : prompts[b][t - offset];
                    mask[(b * width) + t] = t < offset ? 0 : 1;
                }
            }

            using var scope = NewDisposeScope();
            using var result = TextGenerator.Generate(model, tensor(ids, [prompts.Count, width]).to(model.Device), tensor(mask, [prompts.Count, width]).to(model.Device), new GenerationOptions
            {
                MaxNewTokens = maxNewTokens,
                EosTokenIds = [eos],
                PadTokenId = pad,
            });
            var generated = result.GeneratedIds.cpu();
            for (var b = 0; b < prompts.Count; b++)
            {
                var length = (int)result.Lengths[b];
                var tokens = length == 0 ? [] : generated[b, ..length].data<long>().Select(i => (int)i).ToArray();
                answers.Add(tokenizer.Decode(tokens, skipSpecialTokens: true).Trim());
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        return answers;
    }
}
