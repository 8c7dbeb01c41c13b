using System.Globalization;

namespace Distill.CrossTokenizer;

/// <summary>The sample's small command line: an optional sub-command, then <c>--name value</c> pairs (and <c>--help</c>).</summary>
internal static class CommandLine
{
    public const string Help = """
        Cross-tokenizer distillation on the bundled data (student: bytes, 257 ids; teacher: BPE, 512 ids).

        dotnet run -c Release --project samples/Distill.CrossTokenizer -- [options]
          --teacher DIR          teacher HF folder (default: the shipped samples/teachers/bpe-4x128)
          --output DIR           run folder: teacher-answer cache, results.md, results.json (default runs/cross-tokenizer)
          --seeds 1,2,3          student seeds (weights and batch order); mean ± std over them
          --tasks a,b,...|all    bundled task families (default uppercase,count,capital,opposite,multiply)
          --labelled N           labelled rows: the first N training rows of those families (default 40)
          --prompts N            unlabelled prompts answered by the teacher: the next N rows, labels hidden (default: all the rest)
          --steps N              optimizer steps of every student run (default 400)
          --batch-size N         micro-batch size (default 16)
          --lr X                 student peak learning rate (default 3e-3)
          --student-layers N     student depth (default 2)
          --student-hidden N     student width (default 64)
          --methods a,b,...      rows to train: sft, seqkd, uld, uld_dskd, min_ed, dskd_cma (default all)
          --split test|dev       split scored for the table (dev: for picking settings; default test)
          --eval-examples N      rows of that split scored (default: all rows of the families)

        dotnet run -c Release --project samples/Distill.CrossTokenizer -- train-teacher [options]
          --output DIR           (default samples/teachers/bpe-4x128)
          --steps N --batch-size N --lr X --layers N --hidden N --seed N   (defaults 1200, 32, 3e-3, 4, 128, 1)
          --tasks a,b,...|all    (default uppercase,count,capital,opposite,multiply)

        dotnet run -c Release --project samples/Distill.CrossTokenizer -- merge --parts DIR1,DIR2,... [--output DIR]
          combines runs that differ only in --seeds (e.g. one process per seed on a busy machine) into one table
        """;

    public static (string? Command, Dictionary<string, string> Options) Parse(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        string? command = null;
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a is "--help" or "-h")
            {
                options["help"] = "";
            }
            else if (a.StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= args.Length)
                {
                    throw new ArgumentException($"Option {a} needs a value.");
                }

                options[a[2..]] = args[++i];
            }
            else if (i == 0)
            {
                command = a;
            }
            else
            {
                throw new ArgumentException($"Unexpected argument '{a}' (options are --name value; see --help).");
            }
        }

        if (command is not null and not ("train-teacher" or "merge"))
        {
            throw new ArgumentException($"Unknown command '{command}': the sub-commands are train-teacher and merge (see --help).");
        }

        return (command, options);
    }

    public static string Text(Dictionary<string, string> o, string name, string fallback) => Take(o, name) ?? fallback;

    public static int Int(Dictionary<string, string> o, string name, int fallback) =>
        Take(o, name) is { } v ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x : throw new ArgumentException($"--{name} expects an integer, got '{v}'.") : fallback;

    public static double Double(Dictionary<string, string> o, string name, double fallback) =>
        Take(o, name) is { } v ? double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x : throw new ArgumentException($"--{name} expects a number, got '{v}'.") : fallback;

    public static IReadOnlyList<string>? List(Dictionary<string, string> o, string name) =>
        Take(o, name) is { } v ? v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : null;

    public static void RejectUnknown(Dictionary<string, string> o)
    {
        if (o.Count > 0)
        {
            throw new ArgumentException($"Unknown option(s): {string.Join(", ", o.Keys.Select(k => "--" + k))} (see --help).");
        }
    }

    private static string? Take(Dictionary<string, string> o, string name) => o.Remove(name, out var v) ? v : null;
}
