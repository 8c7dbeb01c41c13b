namespace Distill.Eval.Evaluation;

/// <summary>One evaluation example: the prompt to generate from and its reference answers.</summary>
/// <param name="Id">A stable identifier written into the report (e.g. the dataset line number).</param>
/// <param name="Prompt">The prompt text given to the generator (already formatted with any template).</param>
/// <param name="References">One or more reference answers; metrics take the best one.</param>
public sealed record EvalExample(string Id, string Prompt, IReadOnlyList<string> References);
