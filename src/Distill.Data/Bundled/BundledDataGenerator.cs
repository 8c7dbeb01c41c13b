using System.Globalization;

namespace Distill.Data;

/// <summary>
/// Generates Distill's bundled instruction dataset: short templated tasks with checkable answers (arithmetic, string
/// transforms of common words, and facts from small tables written for this project), deterministic for a seed.
/// </summary>
/// <remarks>
/// Tasks and counts (2400 unique examples, split 2000/200/200 after a seeded shuffle): add (828) and subtract (828) of
/// numbers 0–99, multiply (all 144 products of 1–12), reverse / uppercase / sort the letters / count the letters of
/// 120 words (480), capitals of 30 countries and opposites of 30 words, each asked two ways (120). Every word, fact and
/// template here was written for Distill (no third-party data), so the data carries the repository's licence.
/// </remarks>
internal static class BundledDataGenerator
{
    public const int TrainCount = 2000;
    public const int DevCount = 200;
    public const int TestCount = 200;
    public const ulong DefaultSeed = 20261129;

    internal static readonly string[] Words =
    [
        "apple", "river", "plant", "stone", "cloud", "bread", "chair", "table", "light", "night",
        "house", "mouse", "green", "black", "white", "water", "fire", "earth", "wind", "storm",
        "snow", "rain", "sun", "moon", "star", "tree", "leaf", "root", "seed", "bird",
        "fish", "frog", "horse", "sheep", "goat", "lion", "tiger", "zebra", "camel", "panda",
        "book", "page", "word", "line", "song", "dance", "music", "drum", "flute", "piano",
        "road", "bridge", "train", "plane", "boat", "ship", "wheel", "door", "window", "floor",
        "glass", "metal", "paper", "cloth", "sand", "salt", "sugar", "honey", "lemon", "grape",
        "melon", "peach", "onion", "bean", "rice", "corn", "milk", "cheese", "butter", "soup",
        "king", "queen", "child", "friend", "doctor", "farmer", "baker", "sailor", "pilot", "judge",
        "happy", "quick", "slow", "brave", "calm", "quiet", "loud", "sharp", "soft", "warm",
        "north", "south", "east", "west", "city", "town", "field", "forest", "valley", "island",
        "clock", "watch", "candle", "lamp", "brush", "comb", "spoon", "fork", "knife", "plate",
    ];

    internal static readonly (string Country, string Capital)[] Capitals =
    [
        ("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Germany", "Berlin"), ("Japan", "Tokyo"),
        ("Egypt", "Cairo"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Kenya", "Nairobi"), ("Norway", "Oslo"),
        ("Sweden", "Stockholm"), ("Poland", "Warsaw"), ("Greece", "Athens"), ("Austria", "Vienna"), ("Portugal", "Lisbon"),
        ("Ireland", "Dublin"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Cuba", "Havana"), ("India", "New Delhi"),
        ("China", "Beijing"), ("Russia", "Moscow"), ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
        ("Ghana", "Accra"), ("Nepal", "Kathmandu"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Hungary", "Budapest"),
    ];

    internal static readonly (string Word, string Opposite)[] Opposites =
    [
        ("hot", "cold"), ("big", "small"), ("up", "down"), ("left", "right"), ("open", "closed"),
        ("fast", "slow"), ("early", "late"), ("full", "empty"), ("light", "dark"), ("old", "new"),
        ("happy", "sad"), ("strong", "weak"), ("high", "low"), ("wet", "dry"), ("hard", "soft"),
        ("rich", "poor"), ("long", "short"), ("thick", "thin"), ("loud", "quiet"), ("clean", "dirty"),
        ("day", "night"), ("win", "lose"), ("push", "pull"), ("buy", "sell"), ("give", "take"),
        ("first", "last"), ("inside", "outside"), ("above", "below"), ("true", "false"), ("begin", "end"),
    ];

    /// <summary>Generates all splits for <paramref name="seed"/>.</summary>
    public static (List<InstructionExample> Train, List<InstructionExample> Dev, List<InstructionExample> Test) Generate(ulong seed = DefaultSeed)
    {
        var random = new DeterministicRandom(seed);
        var examples = new List<InstructionExample>(TrainCount + DevCount + TestCount);
        AddArithmetic(examples, random, "add", 828, (a, b) => (a, b, a + b), "Add the numbers", "+");
        AddArithmetic(examples, random, "subtract", 828, (a, b) => (Math.Max(a, b), Math.Min(a, b), Math.Max(a, b) - Math.Min(a, b)), "Subtract the numbers", "-");
        for (var a = 1; a <= 12; a++)
        {
            for (var b = 1; b <= 12; b++)
            {
                examples.Add(new InstructionExample("Multiply the numbers", Invariant($"{a} * {b}"), Invariant($"{a * b}")) { Task = "multiply" });
            }
        }

        foreach (var word in Words)
        {
            examples.Add(new InstructionExample("Reverse the word", word, new string([.. word.Reverse()])) { Task = "reverse" });
            examples.Add(new InstructionExample("Uppercase the word", word, word.ToUpperInvariant()) { Task = "uppercase" });
            examples.Add(new InstructionExample("Sort the letters", word, new string([.. word.Order()])) { Task = "sort" });
            examples.Add(new InstructionExample("Count the letters", word, Invariant($"{word.Length}")) { Task = "count" });
        }

        foreach (var (country, capital) in Capitals)
        {
            examples.Add(new InstructionExample("Name the capital", country, capital) { Task = "capital" });
            examples.Add(new InstructionExample("What is the capital of this country", country, capital) { Task = "capital" });
        }

        foreach (var (word, opposite) in Opposites)
        {
            examples.Add(new InstructionExample("Give the opposite", word, opposite) { Task = "opposite" });
            examples.Add(new InstructionExample("What is the opposite of this word", word, opposite) { Task = "opposite" });
        }

        random.Shuffle(examples);
        return (examples[..TrainCount], examples[TrainCount..(TrainCount + DevCount)], examples[(TrainCount + DevCount)..]);
    }

    private static void AddArithmetic(List<InstructionExample> output, DeterministicRandom random, string task, int count, Func<int, int, (int A, int B, int Result)> op, string instruction, string symbol)
    {
        var seen = new HashSet<(int, int)>();
        while (seen.Count < count)
        {
            var (a, b, result) = op(random.NextInt(100), random.NextInt(100));
            if (seen.Add((a, b)))
            {
                output.Add(new InstructionExample(instruction, Invariant($"{a} {symbol} {b}"), Invariant($"{result}")) { Task = task });
            }
        }
    }

    private static string Invariant(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);
}
