namespace Distill.CrossTokenizer;

/// <summary>Settings of the cross-tokenizer comparison; the defaults are the README's run (picked on the dev split).</summary>
public sealed record CrossTokenizerSettings
{
    /// <summary>The row names, in table order (the method rows are also the objective names, except <c>seqkd</c> = CE).</summary>
    public static IReadOnlyList<string> AllMethods { get; } = ["sft", "seqkd", "uld", "uld_dskd", "min_ed", "dskd_cma"];

    /// <summary>Gets the teacher's HF folder; <see langword="null"/> = the shipped <c>teachers/bpe-4x128</c> (copied next to the sample's binaries).</summary>
    public string? TeacherDirectory { get; init; }

    /// <summary>Gets the run folder (teacher-answer cache, trainer folders, <c>results.md</c>, <c>results.json</c>).</summary>
    public string OutputDirectory { get; init; } = Path.Combine("runs", "cross-tokenizer");

    /// <summary>Gets the student seeds (initial weights and batch order); the table reports mean ± sample std over them.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [1, 2, 3];

    /// <summary>Gets the bundled task families of every split (each row's <c>task</c>); empty = all. Default: <see cref="Tasks.Learnable"/>, as the teacher.</summary>
    public IReadOnlyList<string> Tasks { get; init; } = CrossTokenizer.Tasks.Learnable;

    /// <summary>Gets the labelled rows: the first this many training rows of <see cref="Tasks"/> (file order, which the generator shuffled).</summary>
    public int Labelled { get; init; } = 40;

    /// <summary>Gets the unlabelled prompts: the next this many training rows of <see cref="Tasks"/>, whose labels are hidden and replaced by the teacher's answers; <see langword="null"/> = all the remaining rows.</summary>
    public int? Prompts { get; init; }

    /// <summary>Gets the optimizer steps of every student run.</summary>
    public int Steps { get; init; } = 400;

    /// <summary>Gets the micro-batch size.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Gets the student peak learning rate.</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Gets the student depth.</summary>
    public int StudentLayers { get; init; } = 2;

    /// <summary>Gets the student width.</summary>
    public int StudentHidden { get; init; } = 64;

    /// <summary>Gets the method rows to train (subset of <see cref="AllMethods"/>).</summary>
    public IReadOnlyList<string> Methods { get; init; } = AllMethods;

    /// <summary>Gets the split scored for the table: <c>test</c>, or <c>dev</c> when picking settings.</summary>
    public string Split { get; init; } = "test";

    /// <summary>Gets the rows of <see cref="Split"/> (of <see cref="Tasks"/>) scored: the first this many; <see langword="null"/> = all.</summary>
    public int? EvalExamples { get; init; }

    /// <summary>Checks the settings.</summary>
    /// <returns>One message per problem; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Seeds.Count == 0)
        {
            problems.Add("--seeds needs at least one seed.");
        }

        if (Seeds.Distinct().Count() != Seeds.Count)
        {
            problems.Add("--seeds has a repeated seed.");
        }

        if (Labelled < 1 || Prompts < 0)
        {
            problems.Add($"--labelled ({Labelled}) must be ≥ 1 and --prompts ({Prompts}) ≥ 0.");
        }

        if (Steps < 1 || BatchSize < 1 || StudentLayers < 1 || StudentHidden < 32 || StudentHidden % 32 != 0)
        {
            problems.Add("--steps and --batch-size must be ≥ 1, --student-layers ≥ 1, --student-hidden a positive multiple of 32.");
        }

        if (!(LearningRate > 0))
        {
            problems.Add("--lr must be positive.");
        }

        if (Methods.Count == 0 || Methods.Any(m => !AllMethods.Contains(m)))
        {
            problems.Add($"--methods: unknown or empty method list (known: {string.Join(", ", AllMethods)}).");
        }

        if (Split is not ("test" or "dev"))
        {
            problems.Add($"--split must be test or dev, got '{Split}'.");
        }

        if (EvalExamples is < 1)
        {
            problems.Add("--eval-examples must be ≥ 1.");
        }

        return problems;
    }
}
