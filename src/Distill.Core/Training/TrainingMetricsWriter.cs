using System.Text;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;

namespace Distill.Training;

/// <summary>
/// Appends scalars to <c>metrics.jsonl</c> (one JSON object per line: <c>kind</c> <c>train</c> or <c>eval</c>, <c>step</c>,
/// <c>epoch</c>, then the values) and, optionally, to TensorBoard event files under <c>tensorboard/</c> with tags
/// <c>train/…</c> and <c>eval/…</c>.
/// </summary>
internal sealed class TrainingMetricsWriter : IDisposable
{
    public const string JsonlFile = "metrics.jsonl";
    public const string TensorBoardFolder = "tensorboard";
    private readonly StreamWriter jsonl;
    private readonly SummaryWriter? tensorBoard;

    public TrainingMetricsWriter(string outputDirectory, bool tensorBoard)
    {
        Directory.CreateDirectory(outputDirectory);
        jsonl = new StreamWriter(new FileStream(Path.Combine(outputDirectory, JsonlFile), FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        if (tensorBoard)
        {
            this.tensorBoard = torch.utils.tensorboard.SummaryWriter(Path.Combine(outputDirectory, TensorBoardFolder));
        }
    }

    public void Write(string kind, int step, int epoch, IEnumerable<KeyValuePair<string, double>> values)
    {
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

    public void Dispose() => jsonl.Dispose();
}
