using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Distill.Data;
using Distill.IO;
using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Distill.Quickstart;

/// <summary>Settings of <c>train-teacher</c>: the shipped teacher's recipe (deterministic for a seed: one torch thread, seeded init and order).</summary>
public sealed record TeacherTrainingSettings
{
    /// <summary>Gets the HF folder to write (replaced atomically when training finishes).</summary>
    public string OutputDirectory { get; init; } = DefaultOutput(QuickstartSettings.LettersDataset);

    /// <summary>Gets the built-in data when no <see cref="DataPath"/> is given (<see cref="QuickstartSettings.Dataset"/>).</summary>
    public string Dataset { get; init; } = QuickstartSettings.LettersDataset;

    /// <summary>Gets the folder of the training run's metrics and TensorBoard logs.</summary>
    public string RunDirectory { get; init; } = Path.Combine("runs", "train-teacher");

    /// <summary>Gets the bundled tokenizer: <c>bytes</c> (257 ids) or <c>bpe</c> (512 ids).</summary>
    public string Tokenizer { get; init; } = "bytes";

    /// <summary>Gets the depth.</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Gets the width.</summary>
    public int Hidden { get; init; } = 128;

    /// <summary>Gets the optimizer steps (the bundled data's teacher, <c>bytes-4x128</c>, was trained with 1 200).</summary>
    public int Steps { get; init; } = 3000;

    /// <summary>Gets the task families trained on (<see cref="QuickstartSettings.DefaultTasks"/>); <see langword="null"/> = all.</summary>
    public IReadOnlyList<string>? Tasks { get; init; } = QuickstartSettings.DefaultTasks;

    /// <summary>Gets a JSONL file of instruction data to train on instead of the bundled data (its train split, as the quickstart splits it).</summary>
    public string? DataPath { get; init; }

    /// <summary>Gets the micro-batch size.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Gets the peak learning rate (cosine schedule, 5 % warm-up; <c>bytes-4x128</c> was trained with 3e-3, which left the letters teacher at 71 dev EM).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Gets the seed (init and data order).</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Gets the maximum tokens per example (also the model's context length).</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Gets the folder a dataset's shipped teacher lives in.</summary>
    /// <param name="dataset"><see cref="QuickstartSettings.LettersDataset"/> or <see cref="QuickstartSettings.BundledDataset"/>.</param>
    /// <returns><c>samples/teachers/&lt;name&gt;</c>.</returns>
    public static string DefaultOutput(string dataset) =>
        Path.Combine("samples", "teachers", QuickstartSettings.TeacherFor(dataset));
}

/// <summary>
/// <c>train-teacher</c>: trains the quickstart's teacher with SFT on the whole training split of its data (the teacher stands for a
/// model trained on far more labelled data than the student gets) and writes it as an HF folder.
/// </summary>
public static class TeacherTraining
{
    /// <summary>The provenance file written beside the model: recipe, wall time, dev exact match.</summary>
    public const string ProvenanceFile = "training.json";

    /// <summary>Trains the teacher and writes its folder.</summary>
    /// <param name="t">The recipe.</param>
    /// <param name="loggers">Loggers.</param>
    /// <param name="progress">Progress (steps).</param>
    /// <param name="cancellationToken">Stops training; nothing is written then.</param>
    /// <returns>The folder and the dev exact match (×100) of greedy answers.</returns>
    public static (string Directory, double DevExactMatch, TimeSpan Elapsed) Run(TeacherTrainingSettings t, ILoggerFactory loggers, Action<QuickstartProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(t);
        var clock = Stopwatch.StartNew();
        var settings = new QuickstartSettings { Seed = t.Seed, MaxLength = t.MaxLength, Tokenizer = t.Tokenizer, Tasks = t.Tasks, DataPath = t.DataPath, Dataset = t.Dataset, OutputDirectory = t.RunDirectory };
        using var provider = QuickstartServices.Build(settings, loggers, bundledModels: true);
        var device = provider.GetRequiredService<IDistillRuntime>().Compute.Device;
        var tokenizer = BundledData.GetTokenizer(t.Tokenizer == "bpe" ? BundledTokenizer.Bpe : BundledTokenizer.Bytes);
        var (train, dev, _) = QuickstartData.Load(settings);
        var trainSet = TokenizedDataset.Create(train, tokenizer, null, t.MaxLength, t.MaxLength / 2);
        var devSet = TokenizedDataset.Create(dev, tokenizer, null, t.MaxLength, t.MaxLength / 2);
        var batches = new DistillationBatchSource(trainSet, new BatchSampler(trainSet.Count, t.BatchSize, t.Seed));

        using var teacher = AutoCausalLM.FromConfig(QuickstartServices.BundledConfig(tokenizer, t.Layers, t.Hidden, t.MaxLength), t.Seed, device: device);
        var trainer = provider.GetRequiredService<IDistillationTrainerFactory>().Create(teacher, provider.GetRequiredService<IObjectiveFactory>().Create("sft"), null, o =>
        {
            o.OutputDirectory = settings.OutputDirectory;
            o.MaxSteps = t.Steps;
            o.LearningRate = t.LearningRate;
            o.SaveCheckpoints = false;
            o.Precision = TrainingPrecision.Float32;
        });
        trainer.Progress = new SyncProgress<TrainingProgress>(p => progress?.Invoke(new QuickstartProgress("training the teacher (SFT)", p.Step, p.TotalSteps, p.Loss)));
        var result = trainer.Train(batches, cancellationToken: cancellationToken);
        if (result.Status == TrainingStatus.Cancelled)
        {
            throw new OperationCanceledException("Cancelled while training the teacher; nothing was written.");
        }

        teacher.eval();
        var trainTime = clock.Elapsed;
        var (devEm, _) = QuickstartEvaluation.Generate(teacher, devSet, TokenizedDataset.PadId(tokenizer), settings, loggers, cancellationToken);

        // Written to a temporary sibling folder, then renamed into place: a crash never leaves half a teacher.
        var dir = Path.GetFullPath(t.OutputDirectory);
        var temp = dir + ".tmp-" + Guid.NewGuid().ToString("N");
        teacher.SavePretrained(temp, tokenizer);
        AtomicFile.WriteAllText(Path.Combine(temp, ProvenanceFile), JsonSerializer.Serialize(new
        {
            command = "dotnet run -c Release --project samples/Distill.Quickstart -- train-teacher",
            recipe = t with { OutputDirectory = Path.GetFileName(dir), RunDirectory = Path.GetFileName(t.RunDirectory) },
            data = t.DataPath is not null ? string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(t.DataPath)}: {train.Count} training rows, compact template")
                : t.Dataset == QuickstartSettings.LettersDataset ? string.Create(CultureInfo.InvariantCulture, $"generated letter tasks (LetterTasks, {LetterTasks.DefaultCount} rows, seed {LetterTasks.DefaultSeed}): the {train.Count} training rows, compact template")
                : string.Create(CultureInfo.InvariantCulture, $"bundled train split, {train.Count} rows of the task families {(t.Tasks is null ? "(all)" : string.Join(", ", t.Tasks))}, compact template"),
            training_seconds = Math.Round(trainTime.TotalSeconds),
            dev_exact_match = Math.Round(devEm, 1),
            dev_examples = devSet.Count,
        }, new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.Move(temp, dir);
        return (dir, devEm, clock.Elapsed);
    }
}
