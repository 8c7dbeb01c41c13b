using System.Diagnostics;
using System.Text;
using Distill.Tests.Shared;
using Microsoft.Extensions.Logging;

namespace Distill.Data.Tests.Datasets;

/// <summary>Empty files, invalid UTF-8, bounded record length and out-of-vocabulary ids.</summary>
public sealed class DataFileHardeningTests
{
    private const string Row = """{"prompt": "Hi:", "output": " ok"}""";

    [Theory]
    [InlineData("")]
    [InlineData("   \n\n  \t\n")]
    [InlineData(" [ ] ")]
    public void Read_EmptyOrWhitespaceOnly_ThrowsNamingFile(string content)
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "train.jsonl");
        File.WriteAllText(path, content);
        var e = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadTextExamples(path).ToList());
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_InvalidUtf8_ThrowsNamingFileAndLineByDefault_ReplacesAndCountsWhenAsked()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "train.jsonl");
        var bad = Encoding.UTF8.GetBytes("""{"prompt": "caf#", "output": " o#k"}""");
        bad[Array.IndexOf(bad, (byte)'#')] = 0xC3; // a lead byte followed by '"': invalid
        bad[Array.LastIndexOf(bad, (byte)'#')] = 0xFF;
        using (var fs = File.Create(path))
        {
            fs.Write(Encoding.UTF8.GetBytes(Row + "\n" + Row + "\n"));
            fs.Write(bad);
            fs.Write("\n"u8);
        }

        var e = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadTextExamples(path).ToList());
        Assert.Contains($"{path}:3", e.Message, StringComparison.Ordinal);
        Assert.Contains("UTF-8", e.Message, StringComparison.Ordinal);

        var logger = new ListLogger();
        var rows = JsonDatasetReader.ReadTextExamples(path, options: new JsonReadOptions { ReplaceInvalidUtf8 = true, Logger = logger }).ToList();
        Assert.Equal(3, rows.Count);
        Assert.Equal("caf\uFFFD", rows[2].Prompt);
        Assert.Equal(" o\uFFFDk", rows[2].Response);
        var warning = Assert.Single(logger.Messages);
        Assert.Contains("replaced 2 invalid UTF-8", warning, StringComparison.Ordinal);
        Assert.Contains(path, warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_OverlongLine_ThrowsNamingFileAndLine()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "train.jsonl");
        File.WriteAllText(path, Row + "\n" + "{\"prompt\": \"" + new string('x', 5000) + "\", \"output\": \"y\"}\n");
        var e = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadTextExamples(path, options: new JsonReadOptions { MaxRecordBytes = 1000 }).ToList());
        Assert.Contains($"{path}:2", e.Message, StringComparison.Ordinal);
        Assert.Contains("longer than 1000 bytes", e.Message, StringComparison.Ordinal);

        // The same file is fine under the default limit.
        Assert.Equal(2, JsonDatasetReader.ReadTextExamples(path).Count());
    }

    [Fact]
    public void Read_HugeLine_StopsAtTheDefaultLimitWithoutReadingItWhole()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "huge.jsonl");
        using (var fs = File.Create(path))
        {
            fs.Write(Encoding.UTF8.GetBytes(Row + "\n{\"prompt\": \""));
            var block = new byte[1 << 20];
            Array.Fill(block, (byte)'a');
            for (var i = 0; i < 40; i++)
            {
                fs.Write(block); // a 40 MB line
            }
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadTextExamples(path).ToList());
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains($"{path}:2", e.Message, StringComparison.Ordinal);
        Assert.True(allocated < 4L * JsonReadOptions.DefaultMaxRecordBytes, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Read_JsonArrayElementTooLong_Throws()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "train.json");
        File.WriteAllText(path, "[" + Row + ", {\"prompt\": \"" + new string('x', 3 << 20) + "\", \"output\": \"y\"}]");
        var e = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadTextExamples(path, options: new JsonReadOptions { MaxRecordBytes = 1000 }).ToList());
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("longer than 1000 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_Fifo_RejectedWithoutBlocking()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var tmp = new TempFolder();
        var fifo = Path.Combine(tmp.Path, "train.jsonl");
        using (var mk = Process.Start(new ProcessStartInfo("mkfifo", fifo) { UseShellExecute = false })!)
        {
            mk.WaitForExit();
        }

        var e = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadTextExamples(fifo).ToList());
        Assert.Contains(fifo, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Collate_TokenOutsideModelVocabulary_ThrowsNamingExampleAndPosition()
    {
        // Bundled tokenizer A: id = byte value; "Hi:" + " ok" + EOS = [72, 105, 58, 32, 111, 107, 256].
        var dataset = TokenizedDataset.Create([new TextExample("ab", " c"), new TextExample("Hi:", " ok")], BundledData.TokenizerA(), teacher: null);
        dataset.StudentVocabSize = 300;
        using (dataset.Collate([0, 1]))
        {
        }

        dataset.StudentVocabSize = 200; // EOS = 256 at position 6 of example 1 is out of range (a model with a smaller vocabulary)
        var e = Assert.Throws<InvalidDataException>(() => dataset.Collate([1, 0]));
        Assert.Contains("Example 1", e.Message, StringComparison.Ordinal);
        Assert.Contains("token id 256 at position 6", e.Message, StringComparison.Ordinal);

        dataset.StudentVocabSize = 257;
        using var batch = dataset.Collate([1]);
        var e2 = Assert.Throws<InvalidDataException>(() => batch.EnsureTokenIdsInRange(studentVocabSize: 106));
        Assert.Contains("InputIds[0, 4] = 111", e2.Message, StringComparison.Ordinal);
        batch.EnsureTokenIdsInRange(studentVocabSize: 257);
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}
