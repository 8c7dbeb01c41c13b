using System.Globalization;

namespace Distill.OfflineTeacher;

/// <summary>Settings of the offline-teacher comparison (command line: <c>--name value</c>, see <see cref="Parse"/>).</summary>
public sealed record OfflineTeacherSettings
{
    /// <summary>The bundled data's shipped teacher (the quickstart's `--dataset bundled` teacher), used when it exists and no <see cref="TeacherPath"/> is given.</summary>
    public const string ShippedTeacher = "samples/teachers/bytes-4x128";

    /// <summary>Gets the run folder (teacher, caches, student runs, results).</summary>
    public string OutputDirectory { get; init; } = "runs/offline-teacher";

    /// <summary>Gets an HF teacher folder (weights, config, tokenizer), or <see langword="null"/>: the shipped teacher if present, else one trained here.</summary>
    public string? TeacherPath { get; init; }

    /// <summary>Gets a value indicating whether <see cref="ShippedTeacher"/> is looked up (from the working directory upwards) when no <see cref="TeacherPath"/> is given.</summary>
    public bool FindShippedTeacher { get; init; } = true;

    /// <summary>Gets the cache widths to compare; each is capped at the vocabulary size (the bundled one has 257 ids).</summary>
    public IReadOnlyList<int> K { get; init; } = [64, 16];

    /// <summary>Gets the task families of the bundled data (those of the quickstart's teacher).</summary>
    public IReadOnlyList<string> Tasks { get; init; } = ["uppercase", "count", "capital", "opposite", "multiply"];

    /// <summary>Gets the layers of a teacher trained here.</summary>
    public int TeacherLayers { get; init; } = 4;

    /// <summary>Gets the width of a teacher trained here.</summary>
    public int TeacherHidden { get; init; } = 128;

    /// <summary>Gets the SFT steps of a teacher trained here.</summary>
    public int TeacherSteps { get; init; } = 400;

    /// <summary>Gets the student's layers.</summary>
    public int StudentLayers { get; init; } = 2;

    /// <summary>Gets the student's width.</summary>
    public int StudentHidden { get; init; } = 64;

    /// <summary>Gets the distillation steps of every student run.</summary>
    public int Steps { get; init; } = 150;

    /// <summary>Gets the batch size.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Gets the held-out test examples scored.</summary>
    public int EvalExamples { get; init; } = 100;

    /// <summary>Gets the maximum sequence length.</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Gets the seed.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Gets the torch threads (1 by default: the bundled models are tiny).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Parses <c>--output</c>, <c>--teacher</c>, <c>--k 64,16</c>, <c>--steps</c>, <c>--teacher-steps</c>, <c>--eval</c>, <c>--batch</c>, <c>--threads</c>.</summary>
    /// <param name="args">The command line.</param>
    /// <returns>The settings.</returns>
    /// <exception cref="ArgumentException">An unknown option or a bad value, naming it.</exception>
    public static OfflineTeacherSettings Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var s = new OfflineTeacherSettings();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"Option {name} needs a value.");
            }

            var value = args[++i];
            s = name switch
            {
                "--output" => s with { OutputDirectory = value },
                "--teacher" => s with { TeacherPath = value },
                "--k" => s with { K = [.. value.Split(',').Select(v => Int(name, v))] },
                "--steps" => s with { Steps = Int(name, value) },
                "--teacher-steps" => s with { TeacherSteps = Int(name, value) },
                "--eval" => s with { EvalExamples = Int(name, value) },
                "--batch" => s with { BatchSize = Int(name, value) },
                "--threads" => s with { Threads = Int(name, value) },
                _ => throw new ArgumentException($"Unknown option {name}; known: --output, --teacher, --k, --steps, --teacher-steps, --eval, --batch, --threads."),
            };
        }

        return s;
    }

    private static int Int(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : throw new ArgumentException($"Option {name}: '{value}' is not a positive integer.");
}
