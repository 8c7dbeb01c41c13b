namespace Distill.Data.Tests.Datasets;

public sealed class JsonDatasetReaderTests
{
    [Fact]
    public void ReadInstructions_JsonlAndJsonArray_ReadAllLayouts()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var jsonl = Path.Combine(folder.Path, "a.jsonl");
        File.WriteAllText(jsonl, "{\"instruction\": \"Say hi\", \"output\": \"hi\"}\n\n{\"instruction\": \"Add\", \"input\": \"1 + 2\", \"output\": [\"3\", \"three\"], \"task\": \"add\"}\n{\"instruction\": \"Dolly\", \"context\": \"ctx\", \"response\": \"r\"}\n");
        var rows = JsonDatasetReader.ReadInstructions(jsonl).ToList();
        Assert.Equal(3, rows.Count);
        Assert.Equal(new InstructionExample("Say hi", string.Empty, "hi"), rows[0]);
        Assert.Equal("3", rows[1].Output);
        Assert.Equal("add", rows[1].Task);
        Assert.Equal(new InstructionExample("Dolly", "ctx", "r"), rows[2]);

        var array = Path.Combine(folder.Path, "b.json");
        File.WriteAllText(array, "  [ {\"instruction\": \"x\", \"input\": \"\", \"output\": \"y\"} ]");
        Assert.Equal(new InstructionExample("x", string.Empty, "y"), Assert.Single(JsonDatasetReader.ReadInstructions(array)));
    }

    [Fact]
    public void ReadTextExamples_PromptRowsAndInstructionRows_UseTemplateAndReferences()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var path = Path.Combine(folder.Path, "dskd.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"P1\", \"output\": [\"a\", \"b\"]}\n{\"instruction\": \"Reverse the word\", \"input\": \"abc\", \"output\": \"cba\"}\n");
        var rows = JsonDatasetReader.ReadTextExamples(path, InstructionTemplate.Compact).ToList();
        Assert.Equal("P1", rows[0].Prompt);
        Assert.Equal("a", rows[0].Response);
        Assert.Equal(["a", "b"], rows[0].References);
        Assert.Equal("Reverse the word: abc\nAnswer:", rows[1].Prompt);
        Assert.Equal(" cba", rows[1].Response);
        Assert.Equal(["cba"], rows[1].References);

        var ex = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadTextExamples(path).ToList());
        Assert.Equal($"{path}:2: has 'instruction' but no prompt template was given.", ex.Message);
    }

    [Fact]
    public void ReadQaAndMath_ParseSquadAndGsm8kLayouts()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var qa = Path.Combine(folder.Path, "qa.jsonl");
        File.WriteAllText(qa, "{\"context\": \"C\", \"question\": \"Q?\", \"answers\": {\"text\": [\"A1\", \"A2\"], \"answer_start\": [0, 3]}}\n{\"context\": \"C\", \"question\": \"Q2\", \"answers\": [\"x\"]}\n{\"context\": \"C\", \"question\": \"Q3\", \"answer\": \"y\"}\n");
        var rows = JsonDatasetReader.ReadQa(qa).ToList();
        Assert.Equal(["A1", "A2"], rows[0].Answers);
        Assert.Equal(["x"], rows[1].Answers);
        Assert.Equal(["y"], rows[2].Answers);
        var uld = rows[0].ToUldExample();
        Assert.Equal("Context: C\nQuestion: Q?\nAnswer:", uld.Prompt);
        Assert.Equal(" A1", uld.Response);
        Assert.Equal(["A1", "A2"], uld.References);

        var math = Path.Combine(folder.Path, "gsm8k.jsonl");
        File.WriteAllText(math, "{\"question\": \"How many?\", \"answer\": \"3 + 4 = <<3+4=7>>7 apples, 1,200 total\\n#### 1,207\"}\n");
        var problem = Assert.Single(JsonDatasetReader.ReadMath(math));
        Assert.Equal("1207", problem.FinalAnswer);
        var text = problem.ToTextExample(InstructionTemplate.Alpaca);
        Assert.EndsWith("### Instruction:\nHow many?\n\n### Response:\n", text.Prompt, StringComparison.Ordinal);
        Assert.Equal(problem.Solution, text.Response);
        Assert.Equal(["1207"], text.References);
        Assert.Null(JsonDatasetReader.ExtractFinalAnswer("no marker"));
    }

    [Fact]
    public void Read_MalformedRows_NameFileAndLine()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var path = Path.Combine(folder.Path, "bad.jsonl");
        File.WriteAllText(path, "{\"instruction\": \"ok\", \"output\": \"y\"}\n{\"instruction\": \"broken\", \n");
        var ex = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadInstructions(path).ToList());
        Assert.StartsWith($"{path}:2: invalid JSON", ex.Message, StringComparison.Ordinal);

        File.WriteAllText(path, "{\"instruction\": \"ok\"}\n");
        ex = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadInstructions(path).ToList());
        Assert.Equal($"{path}:1: missing 'output'.", ex.Message);

        File.WriteAllText(path, "{\"question\": \"q\", \"answer\": \"no final\"}\n");
        ex = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadMath(path).ToList());
        Assert.Equal($"{path}:1: 'answer' has no '####' final answer.", ex.Message);

        File.WriteAllText(path, "[{\"context\": 1, \"question\": \"q\", \"answers\": [\"a\"]}]");
        ex = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadQa(path).ToList());
        Assert.Equal($"{path}:[0]: 'context' must be a string.", ex.Message);

        File.WriteAllText(path, "[{\"question\": \"q\", \"answer\": \"#### 1\"},\n {\"question\": ]");
        ex = Assert.Throws<InvalidDataException>(() => JsonDatasetReader.ReadMath(path).ToList());
        Assert.StartsWith($"{path}:2: invalid JSON at $[1]", ex.Message, StringComparison.Ordinal);

        Assert.Throws<FileNotFoundException>(() => JsonDatasetReader.ReadQa(Path.Combine(folder.Path, "missing.jsonl")).ToList());
    }
}
