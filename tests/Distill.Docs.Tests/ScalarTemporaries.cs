using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Distill.Docs.Tests;

/// <summary>
/// Finds the call shapes that hand libtorch a temporary <c>TorchSharp.Scalar</c> nobody keeps alive: the argument is read
/// as a raw handle and the finalizer may free the native scalar during the P/Invoke when another thread allocates. Works on
/// the semantic model of all of <c>src/</c> (one compilation against the runtime and package assemblies), so a double
/// variable is caught as well as a literal.
/// </summary>
internal static class ScalarTemporaries
{
    /// <summary>TorchSharp extension methods on Tensor that build a Scalar internally and read it through its handle.</summary>
    private static readonly HashSet<string> TensorToScalarReaders =
    [
        "ToDouble", "ToSingle", "ToHalf", "ToBFloat16", "ToSByte", "ToByte", "ToInt16", "ToInt32", "ToInt64", "ToBoolean",
        "ToComplexFloat32", "ToComplexFloat64",
    ];

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    [
        .. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => !Path.GetFileName(p).StartsWith("Distill.", StringComparison.Ordinal))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)),
    ]);

    /// <summary>The repository root (two levels above this file).</summary>
    public static string Root([CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", ".."));

    /// <summary>Compiles the given files (path relative to the root → text) as one library.</summary>
    public static CSharpCompilation Compile(IEnumerable<(string Path, string Text)> files)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        string[] usings = ["System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http", "System.Threading", "System.Threading.Tasks"];
        var trees = files.Select(f => CSharpSyntaxTree.ParseText(f.Text, parse, path: f.Path)).ToList();
        trees.Add(CSharpSyntaxTree.ParseText(string.Concat(usings.Select(u => $"global using global::{u};\n")), parse));
        return CSharpCompilation.Create(
            "DistillSources",
            trees,
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));
    }

    /// <summary>Every <c>src/**/*.cs</c> file (generated <c>obj/</c> and <c>bin/</c> output excluded).</summary>
    public static IEnumerable<(string Path, string Text)> SourceFiles()
    {
        var root = Root();
        var sep = Path.DirectorySeparatorChar;
        return Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{sep}obj{sep}", StringComparison.Ordinal) && !p.Contains($"{sep}bin{sep}", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(p => (Path.GetRelativePath(root, p).Replace('\\', '/'), File.ReadAllText(p)));
    }

    /// <summary>Errors that would mean the scan cannot see types (a missing reference), which could hide a site.</summary>
    public static IReadOnlyList<string> BindingErrors(CSharpCompilation compilation) =>
    [
        .. compilation.GetDiagnostics()
            .Where(d => d.Severity == DiagnosticSeverity.Error && d.Id is "CS0246" or "CS0234" or "CS0103" or "CS1061" or "CS0117")
            // [OptionsValidator] classes get their Validate from a source generator the scan does not run.
            .Where(d => !(d.Id == "CS1061" && d.GetMessage(System.Globalization.CultureInfo.InvariantCulture).Contains("OptionsValidator' does not contain a definition for 'Validate'", StringComparison.Ordinal)))
            .Select(d => $"{Where(d.Location)}: {d.Id}: {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}"),
    ];

    /// <summary>The hazardous sites as <c>file:line: what</c>.</summary>
    public static IReadOnlyList<string> Find(CSharpCompilation compilation)
    {
        var scalar = compilation.GetTypeByMetadataName("TorchSharp.Scalar")
            ?? throw new InvalidOperationException("TorchSharp.Scalar is not among the references of the scan compilation.");
        var tensor = compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor")
            ?? throw new InvalidOperationException("TorchSharp.torch+Tensor is not among the references of the scan compilation.");
        var torch = compilation.GetTypeByMetadataName("TorchSharp.torch")!;
        var extensions = compilation.GetTypeByMetadataName("TorchSharp.TensorExtensionMethods");
        var sites = new List<string>();
        foreach (var tree in compilation.SyntaxTrees)
        {
            var model = compilation.GetSemanticModel(tree);
            foreach (var node in tree.GetRoot().DescendantNodes())
            {
                var why = node switch
                {
                    // The outermost expression only: in 'DistillationBatch.IgnoreIndex' the name alone also reports the conversion.
                    ExpressionSyntax e when IsImplicitScalar(model, e, scalar) && !(e.Parent is MemberAccessExpressionSyntax m && m.Name == e) =>
                        "a number converted implicitly to a temporary Scalar",
                    BinaryExpressionSyntax or AssignmentExpressionSyntax when model.GetSymbolInfo(node).Symbol is IMethodSymbol
                    {
                        MethodKind: MethodKind.UserDefinedOperator,
                    } op && SymbolEqualityComparer.Default.Equals(op.ContainingType, tensor) => OperatorHazard(op, tensor),
                    InvocationExpressionSyntax call when model.GetSymbolInfo(call).Symbol is IMethodSymbol m =>
                        InvocationHazard(model, call, m, scalar, tensor, torch, extensions),
                    _ => null,
                };
                if (why is not null)
                {
                    sites.Add($"{Where(node.GetLocation())}: {why}: '{node.ToString().Split('\n')[0].Trim()}'");
                }
            }
        }

        return sites;
    }

    /// <summary>
    /// TorchSharp's operators with a number convert it to a temporary Scalar; <c>+</c> (and <c>Scalar - Tensor</c>) go through
    /// <c>add(x)</c>, which passes a temporary <c>alpha = 1</c>.
    /// </summary>
    private static string? OperatorHazard(IMethodSymbol op, INamedTypeSymbol tensor)
    {
        if (op.Parameters.Any(p => p.Type.SpecialType != SpecialType.None))
        {
            return "Tensor operator with a number (converted to a temporary Scalar inside TorchSharp)";
        }

        var leftIsTensor = SymbolEqualityComparer.Default.Equals(op.Parameters[0].Type, tensor);
        return op.Name == "op_Addition" || (op.Name == "op_Subtraction" && !leftIsTensor)
            ? "Tensor operator + (TorchSharp's add passes a temporary alpha Scalar)"
            : null;
    }

    private static string? InvocationHazard(
        SemanticModel model, InvocationExpressionSyntax call, IMethodSymbol m, INamedTypeSymbol scalar, INamedTypeSymbol tensor, INamedTypeSymbol torch, INamedTypeSymbol? extensions)
    {
        var definition = m.ReducedFrom ?? m;
        if (extensions is not null && SymbolEqualityComparer.Default.Equals(definition.ContainingType, extensions) && TensorToScalarReaders.Contains(m.Name))
        {
            return "TorchSharp reads a temporary Scalar built from the tensor";
        }

        if (m.IsExtensionMethod && call.Expression is MemberAccessExpressionSyntax { Expression: InvocationExpressionSyntax receiver }
            && SymbolEqualityComparer.Default.Equals(model.GetTypeInfo(receiver).Type, scalar))
        {
            return "reads a Scalar nobody holds";
        }

        // Overloads that fill in a default Scalar (alpha, value, step, start, exponent) by an implicit conversion inside TorchSharp.
        if (SymbolEqualityComparer.Default.Equals(m.ContainingType, tensor)
            && ((m.Name is "add" or "add_" && m.Parameters.Length == 1)
                || (m.Name is "addcdiv" or "addcdiv_" or "addcmul" or "addcmul_" && m.Parameters.Length == 2)
                || m.Name == "square"))
        {
            return $"Tensor.{m.Name} overload that passes a temporary default Scalar";
        }

        if (SymbolEqualityComparer.Default.Equals(m.ContainingType, torch) && m.Name == "arange"
            && m.Parameters.Count(p => SymbolEqualityComparer.Default.Equals(p.Type, scalar)) < 3)
        {
            return "torch.arange overload that passes a temporary start/step Scalar";
        }

        if (m.Name == "Constant" && m.ContainingType.Name == "TorchScalars" && call.ArgumentList.Arguments.Count == 1
            && !model.GetConstantValue(call.ArgumentList.Arguments[0].Expression).HasValue)
        {
            return "TorchScalars.Constant caches forever: a runtime value belongs in a TorchScalars helper or 'using var s = v.ToScalar()'";
        }

        return null;
    }

    private static bool IsImplicitScalar(SemanticModel model, ExpressionSyntax e, INamedTypeSymbol scalar)
    {
        var conversion = model.GetConversion(e);
        return conversion is { IsUserDefined: true, IsImplicit: true }
               && SymbolEqualityComparer.Default.Equals(model.GetTypeInfo(e).ConvertedType, scalar);
    }

    private static string Where(Location location)
    {
        var span = location.GetLineSpan();
        return $"{span.Path}:{span.StartLinePosition.Line + 1}";
    }
}
