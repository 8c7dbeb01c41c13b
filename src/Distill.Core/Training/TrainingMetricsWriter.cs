using System.Text;
using Distill.IO;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;

namespace Distill.Training;

/// <summary>
/// Appends scalars to <c>metrics.jsonl</c> (one JSON object per line: <c>kind</c> <c>train</c> or <c>eval</c>, <c>step</c>,
/// <c>epoch</c>, then the values) and, optionally, to TensorBoard event files under <c>tensorboard/</c> with tags
/// <c>train/…</c> and <c>eval/…</c>.
/// </summary>
/// <remarks>
/// A resumed run appends to the same file. On its first write, records whose step is at or after that write's step come from
/// the interrupted run (steps done after its last checkpoint, which the resumed run repeats) and are removed, as is a torn
/// last line; the file is rewritten atomically and a <c>{"kind": "resume", "step": s, "dropped": n}</c> marker is appended,
/// so every step appears once per kind.
/// </remarks>
internal sealed class TrainingMetricsWriter : IDisposable
{
    public const string JsonlFile = "metrics.jsonl";
    public const string TensorBoardFolder = "tensorboard";
    private readonly string path;
    private readonly SummaryWriter? tensorBoard;
    private StreamWriter? jsonl;

    public TrainingMetricsWriter(string outputDirectory, bool tensorBoard)
    {
        Directory.CreateDirectory(outputDirectory);
        path = Path.Combine(outputDirectory, JsonlFile);
        if (tensorBoard)
        {
            this.tensorBoard = torch.utils.tensorboard.SummaryWriter(Path.Combine(outputDirectory, TensorBoardFolder));
        }
    }

    public void Write(string kind, int step, int epoch, IEnumerable<KeyValuePair<string, double>> values)
    {
        jsonl ??= Open(step);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind", kind);
            w.WriteNumber("step", step);
            w.WriteNumber("epoch", epoch);
            w.WriteString("time", DateTime.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            foreach (var (name, value) in values)
            {
                if (double.IsFinite(value))
                {
                    w.WriteNumber(name, value);
                }
                else
                {
                    w.WriteString(name, value.ToString(System.Globalization.CultureInfo.InvariantCulture)); // JSON has no NaN/inf
                }

                tensorBoard?.add_scalar($"{kind}/{name}", (float)value, step);
            }

            w.WriteEndObject();
        }

        jsonl.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        jsonl.Flush();
    }

    public string? TensorBoardDirectory => tensorBoard?.LogDir;

    public void Dispose() => jsonl?.Dispose();

    /// <summary>Opens the file for appending, first removing the records of an interrupted run at or after <paramref name="firstStep"/>.</summary>
    private StreamWriter Open(int firstStep)
    {
        var utf8 = new UTF8Encoding(false);
        string? marker = null;
        if (File.Exists(path) && new FileInfo(path).Length > 0)
        {
            var text = File.ReadAllText(path, utf8);
            var lines = text.Split('\n');
            var kept = new StringBuilder(text.Length);
            var dropped = 0;
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i];
                var last = i == lines.Length - 1;
                if (line.Length == 0)
                {
                    continue;
                }

                // A last line without its newline was torn by the crash.
                if (!last && StepOf(line) is { } s && s < firstStep)
                {
                    kept.Append(line).Append('\n');
                }
                else
                {
                    dropped++;
                }
            }

            if (dropped > 0)
            {
                AtomicFile.WriteAllText(path, kept.ToString());
            }

            marker = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{{\"kind\":\"resume\",\"step\":{firstStep},\"dropped\":{dropped},\"time\":\"{DateTime.UtcNow:O}\"}}");
        }

        var writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), utf8);
        if (marker is not null)
        {
            writer.WriteLine(marker);
        }

        return writer;
    }

    private static int? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt32(out var step) ? step : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
