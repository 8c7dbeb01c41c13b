using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Distill.Docs.Tests;

/// <summary>One fenced <c>```csharp</c> block of a Markdown file.</summary>
/// <param name="File">Path relative to the repository root.</param>
/// <param name="Line">1-based line of the opening fence.</param>
/// <param name="Code">The block's code.</param>
/// <param name="Context">Declarations from a <c>&lt;!-- snippet-context: ... --&gt;</c> comment right above the fence (variables the prose assumes), or empty.</param>
internal sealed record MarkdownSnippet(string File, int Line, string Code, string Context)
{
    public override string ToString() => $"{File}:{Line}";
}

/// <summary>Finds the Markdown files of the repository and the C# blocks in them.</summary>
internal static partial class MarkdownSnippets
{
    /// <summary>Gets the repository root (two folders above this test project's source).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>README.md, docs/*.md and each package's README.md, relative to the root.</summary>
    public static IEnumerable<string> MarkdownFiles()
    {
        yield return "README.md";
        var docs = Path.Combine(RepositoryRoot, "docs");
        if (Directory.Exists(docs))
        {
            foreach (var f in Directory.EnumerateFiles(docs, "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                yield return Path.GetRelativePath(RepositoryRoot, f);
            }
        }

        foreach (var f in Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "src"), "README.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            yield return Path.GetRelativePath(RepositoryRoot, f);
        }
    }

    /// <summary>Every <c>```csharp</c> (or <c>```cs</c>) block of <paramref name="relativePath"/>.</summary>
    public static IReadOnlyList<MarkdownSnippet> Read(string relativePath)
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot, relativePath));
        var snippets = new List<MarkdownSnippet>();
        for (var i = 0; i < lines.Length; i++)
        {
            var open = Fence().Match(lines[i]);
            if (!open.Success || open.Groups["lang"].Value is not ("csharp" or "cs" or "c#"))
            {
                continue;
            }

            var context = i > 0 && ContextComment().Match(lines[i - 1]) is { Success: true } m ? m.Groups["decl"].Value.Trim() : "";
            var code = new StringBuilder();
            var start = i;
            for (i++; i < lines.Length && !lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal); i++)
            {
                code.AppendLine(lines[i]);
            }

            if (i == lines.Length)
            {
                throw new InvalidDataException($"{relativePath}:{start + 1}: the ```csharp block is never closed.");
            }

            snippets.Add(new MarkdownSnippet(relativePath, start + 1, code.ToString(), context));
        }

        return snippets;
    }

    private static string FindRoot([CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", ".."));

    [GeneratedRegex(@"^\s*```\s*(?<lang>[A-Za-z#]+)\s*$")]
    private static partial Regex Fence();

    [GeneratedRegex(@"^\s*<!--\s*snippet-context:(?<decl>.*)-->\s*$")]
    private static partial Regex ContextComment();
}
