namespace Distill.Losses.CrossTokenizer;

/// <summary>Requirements shared by the logits-only cross-tokenizer objectives (<c>uld</c>, <c>uld_dskd</c>, <c>min_ed</c>).</summary>
internal static class CrossTokenizerRequirements
{
    /// <summary>Full logits of both models (vocabularies may differ) and the teacher's own tokenisation in the batch.</summary>
    internal static ObjectiveRequirements LogitsAndTeacherTokens { get; } = new()
    {
        NeedsTeacherLogits = true,
        RequiresSameVocabulary = false,
        RequiresTeacherTokens = true,
    };

    /// <summary>
    /// As <see cref="LogitsAndTeacherTokens"/>, but sparse top-k teacher targets (a cache or server of the teacher's tokens)
    /// serve too: the ULD objectives read only the teacher's sorted probabilities (see <see cref="UldMath.SortedTopKDistance"/>).
    /// </summary>
    internal static ObjectiveRequirements SortedProbabilitiesAndTeacherTokens { get; } = LogitsAndTeacherTokens with { AcceptsSparseTopK = true };
}
