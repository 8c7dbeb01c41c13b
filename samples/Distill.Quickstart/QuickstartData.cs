using Distill.Data;

namespace Distill.Quickstart;

/// <summary>The quickstart's splits: the generated letter tasks (default), the bundled dataset (optionally some task families) or a user JSONL file.</summary>
public static class QuickstartData
{
    /// <summary>Loads train, dev and test with the settings' template.</summary>
    /// <param name="settings">Data path, template, task families.</param>
    /// <returns>The splits, in file order (the bundled train split is already shuffled, so its first rows are a fixed random subset).</returns>
    public static (List<TextExample> Train, List<TextExample> Dev, List<TextExample> Test) Load(QuickstartSettings settings)
    {
        var template = InstructionTemplate.FromName(settings.Template);
        if (settings.DataPath is null && settings.Dataset == QuickstartSettings.LettersDataset)
        {
            return Split([.. LetterTasks.Generate().Select(template.Apply)]);
        }

        if (settings.DataPath is null)
        {
            var tasks = settings.Tasks is { Count: > 0 } t ? new HashSet<string>(t, StringComparer.Ordinal) : null;
            List<TextExample> Bundled(BundledSplit split) =>
                [.. BundledData.Load(split).Where(e => tasks is null || (e.Task is { } task && tasks.Contains(task))).Select(template.Apply)];
            return (Bundled(BundledSplit.Train), Bundled(BundledSplit.Dev), Bundled(BundledSplit.Test));
        }

        return Split(JsonDatasetReader.ReadTextExamples(settings.DataPath, template).ToList());
    }

    // A user file or the generated rows: every 20th example is test, the next one dev, the rest train (deterministic, no shuffling needed).
    private static (List<TextExample> Train, List<TextExample> Dev, List<TextExample> Test) Split(List<TextExample> all) => (
        [.. all.Where((_, i) => i % 20 is not (0 or 1))],
        [.. all.Where((_, i) => i % 20 == 1)],
        [.. all.Where((_, i) => i % 20 == 0)]);
}
