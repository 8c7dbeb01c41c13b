using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Distill.Data;
using Distill.IO;
using Distill.Models;
using Distill.Training;

namespace Distill.CrossTokenizer;

/// <summary>Settings of <c>train-teacher</c>: the BPE teacher shipped with the sample.</summary>
public sealed record TeacherSettings
{
    /// <summary>Gets the HF folder the teacher is written to.</summary>
    public string OutputDirectory { get; init; } = Path.Combine("samples", "teachers", "bpe-4x128");

    /// <summary>Gets the transformer blocks.</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Gets the hidden size.</summary>
    public int Hidden { get; init; } = 128;

    /// <summary>Gets the bundled task families trained on (each row's <c>task</c>); empty = all. Default: <see cref="Tasks.Learnable"/>.</summary>
    public IReadOnlyList<string> Tasks { get; init; } = CrossTokenizer.Tasks.Learnable;

    /// <summary>Gets the optimizer steps.</summary>
    public int Steps { get; init; } = 1200;

    /// <summary>Gets the micro-batch size.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Gets the peak learning rate.</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Gets the seed (weights and batch order).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Gets the trainer's working folder (its metrics.jsonl), removed once the teacher is written.</summary>
    public string WorkDirectory { get; init; } = Path.Combine("runs", "cross-tokenizer-teacher-training");
}

/// <summary>
/// Trains the sample's teacher from scratch: a GPT-2 on tokenizer B (the bundled trained BPE, 512 ids), SFT on the
/// bundled training rows of the chosen task families, and writes it as an HF folder (config.json, model.safetensors,
/// tokenizer.json, tokenizer_config.json) plus <c>teacher-card.json</c> (settings, time, dev scores). Single-threaded and
/// seeded: the same settings give the same weights.
/// </summary>
public static class TeacherTraining
{
    /// <summary>The file next to the weights that records how the teacher was made.</summary>
    public const string CardFile = "teacher-card.json";

    /// <summary>Trains and writes the teacher.</summary>
    /// <param name="settings">Shape, steps, seed and folder.</param>
    /// <param name="log">Progress lines.</param>
    /// <param name="cancellationToken">Stops training; nothing is written then.</param>
    /// <returns>The folder written.</returns>
    public static string Run(TeacherSettings settings, Action<string> log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var tokenizer = BundledData.TokenizerB();
        var template = InstructionTemplate.Compact;
        var train = TokenizedDataset.Create(CrossTokenizer.Tasks.Load(BundledSplit.Train, settings.Tasks).Select(template.Apply), tokenizer, null, Models.MaxLength, Models.MaxPromptLength);
        var dev = TokenizedDataset.Create(CrossTokenizer.Tasks.Load(BundledSplit.Dev, settings.Tasks).Select(template.Apply), tokenizer, null, Models.MaxLength, Models.MaxPromptLength);
        using var teacher = AutoCausalLM.FromConfig(Models.Gpt2(tokenizer, settings.Layers, settings.Hidden), settings.Seed);
        var clock = Stopwatch.StartNew();
        var workDir = settings.WorkDirectory;
        var lastLog = Stopwatch.StartNew();
        var result = Models.Train(teacher, Objectives.Create("sft"), null, train, settings.Steps, settings.BatchSize, settings.LearningRate, settings.Seed, workDir,
            new Progress(p =>
            {
                if (lastLog.Elapsed.TotalSeconds >= 30 || p.Step == p.TotalSteps)
                {
                    lastLog.Restart();
                    log(string.Create(CultureInfo.InvariantCulture, $"teacher step {p.Step}/{p.TotalSteps} loss {p.Loss:F3} ({clock.Elapsed.TotalSeconds:F0} s)"));
                }
            }),
            cancellationToken);
        if (result.Status == TrainingStatus.Cancelled)
        {
            throw new OperationCanceledException("Cancelled while training the teacher; nothing was written.");
        }

        var trainSeconds = clock.Elapsed.TotalSeconds;
        var (em, rouge, _) = Scoring.Evaluate(teacher, dev, cancellationToken);
        log(string.Create(CultureInfo.InvariantCulture, $"teacher trained in {trainSeconds:F0} s: dev EM {em:F1}, ROUGE-L {rouge:F1}"));

        // Written to a temporary folder, then renamed into place: a crash never leaves a half-written teacher.
        var dir = Path.GetFullPath(settings.OutputDirectory);
        var temp = dir + ".tmp-" + Guid.NewGuid().ToString("N");
        teacher.SavePretrained(temp, tokenizer);
        var card = new
        {
            description = "GPT-2 teacher of samples/Distill.CrossTokenizer on the bundled BPE tokenizer (tokenizer B), SFT on the bundled training rows of the task families below (compact template)",
            command = string.Create(CultureInfo.InvariantCulture, $"dotnet run -c Release --project samples/Distill.CrossTokenizer -- train-teacher --steps {settings.Steps} --seed {settings.Seed} --tasks {(settings.Tasks.Count == 0 ? "all" : string.Join(",", settings.Tasks))}"),
            tasks = settings.Tasks,
            trainRows = train.Count,
            layers = settings.Layers,
            hidden = settings.Hidden,
            steps = settings.Steps,
            batchSize = settings.BatchSize,
            learningRate = settings.LearningRate,
            seed = settings.Seed,
            trainSeconds = Math.Round(trainSeconds, 1),
            devExactMatch = Math.Round(em, 2),
            devRougeL = Math.Round(rouge, 2),
        };
        AtomicFile.WriteAllText(Path.Combine(temp, CardFile), JsonSerializer.Serialize(card, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
        Directory.Move(temp, dir);
        if (Directory.Exists(workDir))
        {
            Directory.Delete(workDir, recursive: true);
        }

        return dir;
    }

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
