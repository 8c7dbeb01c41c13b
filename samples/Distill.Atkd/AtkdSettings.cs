using Distill.Training.Sources;

namespace Distill.Atkd;

/// <summary>Settings of the ATKD source comparison. The defaults are the measured README run (about 10 minutes on 2 CPU cores).</summary>
public sealed record AtkdSettings
{
    /// <summary>The bundled data's shipped teacher (the quickstart's `--dataset bundled` teacher; an HF folder under <c>samples/teachers/</c>, copied next to the assembly), used when present.</summary>
    public const string ShippedTeacher = "bytes-4x128";

    /// <summary>Gets an HF teacher folder; <see langword="null"/> = the shipped teacher if present, else a small teacher trained once and cached in the run folder.</summary>
    public string? TeacherPath { get; init; }

    /// <summary>Gets a value indicating whether to use the bundled data's shipped teacher when it is present (false: train the fallback teacher).</summary>
    public bool UseShippedTeacher { get; init; } = true;

    /// <summary>Gets the run folder (teacher cache, teacher answers, results.md/json).</summary>
    public string OutputDirectory { get; init; } = "runs/atkd";

    /// <summary>Gets the sample sources compared, in table order.</summary>
    public IReadOnlyList<AtkdSampleSource> Sources { get; init; } = Enum.GetValues<AtkdSampleSource>();

    /// <summary>Gets the training seeds (student init, data order, the sources' coins); the table reports mean ± std over them.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [1, 2, 3];

    /// <summary>Gets the bundled task families to use; <see langword="null"/> = all nine (the 200 test examples).</summary>
    public IReadOnlyList<string>? Tasks { get; init; }

    /// <summary>Gets the number of training prompts (the first rows of the bundled train split); the teacher answers each once.</summary>
    public int TrainExamples { get; init; } = 1000;

    /// <summary>Gets the number of test examples scored per student.</summary>
    public int EvalExamples { get; init; } = 200;

    /// <summary>Gets the optimizer steps of every student run.</summary>
    public int Steps { get; init; } = 100;

    /// <summary>Gets the micro-batch size.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Gets the student's peak learning rate (ATKD's 2e-5 is for pretrained 1-7B students; a random tiny student needs more).</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Gets the token limit of generated answers (teacher answers, the sources' generations, evaluation).</summary>
    public int MaxNewTokens { get; init; } = 16;

    /// <summary>Gets the maximum sequence length.</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Gets the random student's depth.</summary>
    public int StudentLayers { get; init; } = 2;

    /// <summary>Gets the random student's width.</summary>
    public int StudentHidden { get; init; } = 96;

    /// <summary>Gets the depth of the fallback teacher (trained when no teacher folder is found).</summary>
    public int TeacherLayers { get; init; } = 4;

    /// <summary>Gets the width of the fallback teacher.</summary>
    public int TeacherHidden { get; init; } = 128;

    /// <summary>Gets the optimizer steps of the fallback teacher.</summary>
    public int TeacherSteps { get; init; } = 600;

    /// <summary>Gets the CPU threads for torch; <see langword="null"/> = 1 for the bundled models (faster on tiny models), torch's choice for a user teacher.</summary>
    public int? Threads { get; init; }

    /// <summary>Returns the problems with the settings (empty when valid).</summary>
    /// <returns>One message per problem.</returns>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        void Check(bool ok, string message)
        {
            if (!ok)
            {
                problems.Add(message);
            }
        }

        Check(Sources.Count > 0 && Sources.Distinct().Count() == Sources.Count, "--sources: at least one, without repeats.");
        Check(Seeds.Count > 0 && Seeds.Distinct().Count() == Seeds.Count, "--seeds: at least one, without repeats.");
        Check(TrainExamples >= 1 && EvalExamples >= 1 && Steps >= 1 && BatchSize >= 1 && MaxNewTokens >= 1, "--train-examples, --eval-examples, --steps, --batch-size and --max-new-tokens must be positive.");
        Check(LearningRate > 0, "--lr must be positive.");
        Check(StudentLayers >= 1 && StudentHidden >= 32 && TeacherLayers >= 1 && TeacherHidden >= 32 && TeacherSteps >= 1, "model sizes: at least 1 layer and width 32; teacher steps positive.");
        Check(MaxLength > MaxNewTokens + 8, "--max-length must leave room for a prompt after --max-new-tokens.");
        return problems;
    }
}
