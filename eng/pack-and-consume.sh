#!/usr/bin/env bash
# Packs the six Distill libraries and proves they can be consumed: a throwaway console project outside the repo
# restores them from the local pack folder (plus nuget.org for TorchSharp-cpu), builds, and runs a tensor op
# through Distill's native runtime loader; a second one compiles and runs README.md's main example unchanged.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/artifacts/packages"
version="0.1.0-local.$(date +%s)"   # unique per run, so a stale copy in the NuGet cache is never reused
rm -rf "$out"
dotnet pack "$root/Distill.sln" -c Release -o "$out" -p:Version="$version" --nologo -v minimal

expected=(Distill.Core Distill.Losses Distill.Lora Distill.Data Distill.Eval Distill.Remote)
for id in "${expected[@]}"; do
  test -f "$out/$id.$version.nupkg" || { echo "missing package $id.$version.nupkg" >&2; exit 1; }
  test -f "$out/$id.$version.snupkg" || { echo "missing symbols package $id.$version.snupkg" >&2; exit 1; }
done
count=$(ls "$out"/*.nupkg | wc -l)
[ "$count" -eq 6 ] || { echo "expected 6 packages, found $count" >&2; ls "$out" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$out" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
# An executable project that references the given packages (NAME or NAME=VERSION; the Distill ones take $version).
write_consumer_project() {
  local file="$1"; shift
  {
    printf '<Project Sdk="Microsoft.NET.Sdk">\n  <PropertyGroup>\n    <OutputType>Exe</OutputType>\n'
    printf '    <TargetFramework>net10.0</TargetFramework>\n    <Nullable>enable</Nullable>\n    <ImplicitUsings>enable</ImplicitUsings>\n'
    printf '  </PropertyGroup>\n  <ItemGroup>\n'
    local ref
    for ref in "$@"; do
      case "$ref" in
        *=*) printf '    <PackageReference Include="%s" Version="%s" />\n' "${ref%%=*}" "${ref#*=}" ;;
        *) printf '    <PackageReference Include="%s" Version="%s" />\n' "$ref" "$version" ;;
      esac
    done
    printf '  </ItemGroup>\n</Project>\n'
  } > "$file"
}
write_consumer_project "$work/Consumer.csproj" Distill.Core Distill.Losses Distill.Lora Distill.Data Distill.Eval Distill.Remote TorchSharp-cpu=0.107.0
cat > "$work/Program.cs" <<'CS'
using System.IO.Compression;
using System.Text.RegularExpressions;
using Distill.Runtime;
using TorchSharp;

// 1. Each package carries README.md, XML docs, the MIT expression, the repository, and the right dependencies.
string dir = args[0], version = args[1];
var deps = new Dictionary<string, string[]>
{
    ["Distill.Core"] = [], ["Distill.Losses"] = ["Distill.Core", "Distill.Data"], ["Distill.Lora"] = ["Distill.Core"],
    ["Distill.Data"] = ["Distill.Core"], ["Distill.Eval"] = ["Distill.Core", "Distill.Data"],
    ["Distill.Remote"] = ["Distill.Core", "Distill.Data"],
};
foreach (var (id, want) in deps)
{
    using var zip = ZipFile.OpenRead(Path.Combine(dir, $"{id}.{version}.nupkg"));
    var names = zip.Entries.Select(e => e.FullName).ToHashSet();
    string nuspec = new StreamReader(zip.GetEntry($"{id}.nuspec")!.Open()).ReadToEnd();
    var got = Regex.Matches(nuspec, "<dependency id=\"(Distill\\.[A-Za-z]+)\" version=\"([^\"]+)\"").Select(m => (m.Groups[1].Value, m.Groups[2].Value)).ToHashSet();
    string? problem =
        !names.Contains("README.md") ? "README.md missing" :
        !new StreamReader(zip.GetEntry("README.md")!.Open()).ReadToEnd().StartsWith($"# {id}\n", StringComparison.Ordinal) ? "README.md is not the package's own README" :
        !names.Contains($"lib/net10.0/{id}.xml") ? "XML docs missing" :
        !nuspec.Contains("<license type=\"expression\">MIT</license>") ? "license expression missing" :
        !nuspec.Contains("<repository") ? "repository missing" :
        want.FirstOrDefault(d => !got.Contains((d, version))) is string d ? $"dependency on {d} {version} missing" :
        !nuspec.Contains("id=\"TorchSharp\"") || nuspec.Contains("TorchSharp-cpu") ? "must depend on the managed TorchSharp package only" : null;
    if (problem is not null) { Console.Error.WriteLine($"{id}: {problem}"); return 1; }
    Console.WriteLine($"package OK: {id} -> [{string.Join(", ", got.Select(g => g.Item1))}]");
}

// 2. The packages work: native runtime loads and a tensor op runs.
var report = DistillRuntime.EnsureNativeRuntime();
Console.WriteLine($"native runtime: {report.Outcome}");
using var x = torch.arange(4, dtype: torch.float32);
float sum = x.mul(x).sum().item<float>(); // 0 + 1 + 4 + 9
if (sum != 14f) { Console.Error.WriteLine($"unexpected {sum}"); return 1; }
Console.WriteLine($"consumer OK: sum of squares = {sum}");
return 0;
CS
dotnet run --project "$work/Consumer.csproj" -c Release -- "$out" "$version"


# 3. README.md's main example (the csharp block that starts with "// README main example"), unchanged, as a console app
#    on the packed packages plus the host packages its install section names.
readme="$work/readme"
mkdir -p "$readme"
cp "$work/nuget.config" "$readme/nuget.config"
awk '/^```csharp$/ { inblock = 1; n = 0; next } /^```$/ { if (inblock && found) exit; inblock = 0; next }
     inblock { if (n == 0 && $0 == "// README main example") found = 1; n++; if (found) print }' "$root/README.md" > "$readme/Program.cs"
grep -q "README main example" "$readme/Program.cs" || { echo "README.md has no csharp block starting with '// README main example'" >&2; exit 1; }
write_consumer_project "$readme/ReadmeExample.csproj" Distill.Core Distill.Losses Distill.Data Distill.Eval Distill.Lora TorchSharp-cpu=0.107.0 \
  Microsoft.Extensions.DependencyInjection=10.0.0 Microsoft.Extensions.Logging.Console=10.0.0
(cd "$readme" && dotnet run -c Release) | tee "$readme/output.txt"
grep -q "Completed after 40 steps" "$readme/output.txt" || { echo "README main example did not finish its 40 training steps" >&2; exit 1; }
test -f "$readme/runs/readme/student/tokenizer.json" && test -f "$readme/runs/readme/student/model.safetensors" \
  || { echo "README main example did not save the student folder with its tokenizer" >&2; exit 1; }
echo "README main example OK"

