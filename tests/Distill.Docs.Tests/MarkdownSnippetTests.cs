namespace Distill.Docs.Tests;

/// <summary>
/// Every fenced C# block of README.md, docs/*.md and the package READMEs compiles against the libraries, so the docs cannot
/// drift from the API. A block may rely on variables the prose introduces: declare them in an HTML comment right above the
/// fence, e.g. <c>&lt;!-- snippet-context: Tensor ids = null!; ICausalLM model = null!; --&gt;</c> (invisible on GitHub).
/// </summary>
public sealed class MarkdownSnippetTests
{
    public static TheoryData<string> Snippets()
    {
        var data = new TheoryData<string>();
        foreach (var file in MarkdownSnippets.MarkdownFiles())
        {
            foreach (var snippet in MarkdownSnippets.Read(file))
            {
                data.Add(snippet.ToString());
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Snippets))]
    public void Snippet_Compiles(string location)
    {
        var file = location[..location.LastIndexOf(':')];
        var snippet = MarkdownSnippets.Read(file).Single(s => s.ToString() == location);
        var errors = SnippetCompiler.Errors(snippet);
        Assert.True(errors.Count == 0, $"{location} does not compile:\n{string.Join("\n", errors)}");
    }

    [Fact]
    public void Readme_HasCSharpBlocks_AndTheMainExample()
    {
        var blocks = MarkdownSnippets.Read("README.md");
        Assert.NotEmpty(blocks);
        Assert.Single(blocks, b => b.Code.Contains("// README main example", StringComparison.Ordinal));
    }

    [Fact]
    public void SnippetCompiler_BrokenCode_ReportsTheMarkdownLine()
    {
        // The checker must be able to fail: an unknown member on line 3 of a block whose fence is on line 10.
        var broken = new MarkdownSnippet("README.md", 10, "using Distill.Models;\n\nvar x = AutoCausalLM.NoSuchMethod();\n", "");
        var errors = SnippetCompiler.Errors(broken);
        var error = Assert.Single(errors);
        Assert.StartsWith("README.md:13: CS0117", error, StringComparison.Ordinal);
    }

    [Fact]
    public void SnippetCompiler_Context_DeclaresVariables()
    {
        var snippet = new MarkdownSnippet("docs/x.md", 1, "using Distill.Generation;\nvar r = TextGenerator.Generate(model, ids, new GenerationOptions());\n", "Distill.ICausalLM model = null!; TorchSharp.torch.Tensor ids = null!;");
        Assert.Empty(SnippetCompiler.Errors(snippet));
        Assert.NotEmpty(SnippetCompiler.Errors(snippet with { Context = "" }));
    }

    [Fact]
    public void SnippetCompiler_DeclarationsOnly_CompileAsALibrary()
    {
        var snippet = new MarkdownSnippet("docs/x.md", 1, "using Distill.Models;\n\ninternal static class Sizes\n{\n    internal static int Vocab(CausalLM m) => m.Config.VocabSize;\n}\n", "");
        Assert.Empty(SnippetCompiler.Errors(snippet));
    }
}
