using Distill.Data.Synthesis;
using Distill.Tests.Shared;

namespace Distill.Data.Tests.Synthesis;

public class SdftDatasetTests
{
    [Fact]
    public void Read_OfficialColumnLayouts()
    {
        using var tmp = new TempFolder();
        var alpaca = Path.Combine(tmp.Path, "alpaca_train.json");
        File.WriteAllText(alpaca, """[{"instruction": "Say hi", "input": "", "output": "Hi."}, {"instruction": "Add", "input": "1 + 2", "output": "3"}]""");
        var gsm8k = Path.Combine(tmp.Path, "gsm8k_train.jsonl");
        File.WriteAllText(gsm8k, "{\"question\": \"1 + 1?\", \"answer\": \"1 + 1 = 2. The answer is 2.\"}\n\n");
        Assert.Equal([new InstructionExample("Say hi", "", "Hi."), new InstructionExample("Add", "1 + 2", "3")], SdftDataset.Read(alpaca));
        Assert.Equal([new InstructionExample("1 + 1?", "", "1 + 1 = 2. The answer is 2.")], SdftDataset.Read(gsm8k));
    }

    [Fact]
    public void Read_RowWithoutResponse_NamesFileAndLine()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "task.jsonl");
        File.WriteAllText(path, "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"c\"}\n");
        var ex = Assert.Throws<InvalidDataException>(() => SdftDataset.Read(path));
        Assert.Contains("task.jsonl:2", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no response", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_MultiTurnHistoryOrNonString_IsAnError()
    {
        using var tmp = new TempFolder();
        var path = Path.Combine(tmp.Path, "lima.json");
        File.WriteAllText(path, """[{"instruction": "a", "output": "b", "history": [["q", "a"]]}]""");
        Assert.Contains("lima.json:[0]", Assert.Throws<InvalidDataException>(() => SdftDataset.Read(path)).Message, StringComparison.Ordinal);
        File.WriteAllText(path, """[{"instruction": "a", "output": 3}]""");
        Assert.Contains("'output' must be a string", Assert.Throws<InvalidDataException>(() => SdftDataset.Read(path)).Message, StringComparison.Ordinal);
    }
}
