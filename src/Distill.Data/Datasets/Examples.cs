namespace Distill.Data;

/// <summary>An instruction-following example (Alpaca/Dolly layout).</summary>
/// <param name="Instruction">The task description.</param>
/// <param name="Input">Optional context for the task; empty when there is none.</param>
/// <param name="Output">The reference response.</param>
public sealed record InstructionExample(string Instruction, string Input, string Output)
{
    /// <summary>Gets an optional category label (e.g. <c>add</c>, <c>reverse</c> in the bundled data).</summary>
    public string? Task { get; init; }
}

/// <summary>An extractive QA example (SQuAD layout).</summary>
/// <param name="Context">The passage.</param>
/// <param name="Question">The question.</param>
/// <param name="Answers">The reference answers (at least one).</param>
public sealed record QaExample(string Context, string Question, IReadOnlyList<string> Answers)
{
    /// <summary>ULD's layout: prompt <see cref="PromptTemplates.UldSquad"/>, response <c>" " + Answers[0]</c>, references = all answers.</summary>
    /// <returns>The text example.</returns>
    public TextExample ToUldExample() =>
        new(PromptTemplates.UldSquad(Context, Question), " " + Answers[0]) { References = Answers };
}

/// <summary>A math word problem (GSM8K layout).</summary>
/// <param name="Question">The problem.</param>
/// <param name="Solution">The full reference solution, reasoning included.</param>
/// <param name="FinalAnswer">The final answer: the text after <c>####</c>, trimmed, thousands separators removed.</param>
public sealed record MathExample(string Question, string Solution, string FinalAnswer)
{
    /// <summary>Renders the question as an instruction with <paramref name="template"/>; the response is the full solution, the reference the final answer.</summary>
    /// <param name="template">The prompt template (e.g. <see cref="InstructionTemplate.Alpaca"/>).</param>
    /// <returns>The text example.</returns>
    public TextExample ToTextExample(InstructionTemplate template)
    {
        ArgumentNullException.ThrowIfNull(template);
        return template.Apply(new InstructionExample(Question, string.Empty, Solution)) with { References = [FinalAnswer] };
    }
}

/// <summary>
/// A prompt and its response, ready to tokenise: what templates produce and what <see cref="TokenizedDataset"/> consumes.
/// </summary>
/// <param name="Prompt">The prompt text (template applied); its tokens get label −100.</param>
/// <param name="Response">The training target (the first reference).</param>
public sealed record TextExample(string Prompt, string Response)
{
    /// <summary>Gets the raw reference texts for evaluation (DSKD's <c>output</c> may be a list; no template response prefix); defaults to <see cref="Response"/> alone.</summary>
    public IReadOnlyList<string> References { get; init; } = [Response];
}
