using System.Collections.Immutable;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Distill.Docs.Tests;

/// <summary>
/// Compiles a Markdown C# block as a console program (top-level statements) against the Distill libraries and the packages a
/// host app uses, with the implicit usings of a <c>dotnet new console</c> project: what a reader who pastes it gets.
/// </summary>
internal static class SnippetCompiler
{
    private static readonly string[] ImplicitUsings =
        ["System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http", "System.Threading", "System.Threading.Tasks"];

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    [
        .. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => !Path.GetFileName(p).StartsWith("Distill.Docs.Tests", StringComparison.Ordinal))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)),
    ]);

    /// <summary>Compiles the snippet; returns the error diagnostics (with lines mapped back to the Markdown file).</summary>
    public static IReadOnlyList<string> Errors(MarkdownSnippet snippet)
    {
        var (source, headerLines, usingLines) = Assemble(snippet);
        var tree = CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest), path: snippet.File);
        var compilation = CSharpCompilation.Create(
            "Snippet",
            [tree, CSharpSyntaxTree.ParseText(string.Concat(ImplicitUsings.Select(u => $"global using global::{u};\n")))],
            References.Value,
            // A block with statements is a program (top-level statements); a block of declarations only is a library.
            new CSharpCompilationOptions(
                tree.GetRoot().DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.GlobalStatementSyntax>().Any() ? OutputKind.ConsoleApplication : OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));
        using var pe = new MemoryStream();
        var result = compilation.Emit(pe);
        return [.. result.Diagnostics
            .Where(d => d.Severity == DiagnosticSeverity.Error)
            .Select(d =>
            {
                var line = d.Location.GetLineSpan().StartLinePosition.Line;
                var where = line >= headerLines ? $"{snippet.File}:{snippet.Line + 1 + usingLines + line - headerLines}"
                    : line < usingLines ? $"{snippet.File}:{snippet.Line + 1 + line}"
                    : $"{snippet} (snippet-context)";
                return $"{where}: {d.Id}: {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
            })];
    }

    /// <summary>The snippet's <c>using</c> lines first, then the context declarations, then the rest of the code.</summary>
    private static (string Source, int HeaderLines, int UsingLines) Assemble(MarkdownSnippet snippet)
    {
        var lines = snippet.Code.Split('\n');
        var usings = new StringBuilder();
        var body = new StringBuilder();
        var index = 0;
        for (; index < lines.Length; index++)
        {
            var t = lines[index].Trim();
            if (t.StartsWith("using ", StringComparison.Ordinal) && !t.StartsWith("using var ", StringComparison.Ordinal) && !t.Contains('(', StringComparison.Ordinal) && t.EndsWith(';'))
            {
                usings.AppendLine(lines[index].TrimEnd('\r'));
            }
            else if (t.Length == 0 || t.StartsWith("//", StringComparison.Ordinal))
            {
                usings.AppendLine();
            }
            else
            {
                break;
            }
        }

        var header = usings + snippet.Context.Replace(";", ";\n", StringComparison.Ordinal).TrimEnd() + "\n";
        var headerLines = header.Count(c => c == '\n');
        for (var i = index; i < lines.Length; i++)
        {
            body.AppendLine(lines[i].TrimEnd('\r'));
        }

        return (header + body, headerLines, index);
    }
}
