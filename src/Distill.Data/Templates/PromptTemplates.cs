using System.Text;

namespace Distill.Data;

/// <summary>A chat message for <see cref="PromptTemplates.Llama2Chat"/> and <see cref="PromptTemplates.ChatMl"/>.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The message text.</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Turns an <see cref="InstructionExample"/> into prompt text.</summary>
/// <param name="Name">The template name, as used in configuration (<c>alpaca</c>, <c>dolly</c>, <c>compact</c>, ...).</param>
/// <param name="Render">Renders the prompt of an example (everything before the response).</param>
public sealed record InstructionTemplate(string Name, Func<InstructionExample, string> Render)
{
    /// <summary>Gets the text put before the output to form the response (the compact template answers after a space: <c>" 68"</c>).</summary>
    /// <value>The default is empty.</value>
    public string ResponsePrefix { get; init; } = string.Empty;

    /// <summary>Stanford Alpaca's prompt (with the Input block only when the input is non-empty).</summary>
    public static InstructionTemplate Alpaca { get; } = new("alpaca", e => PromptTemplates.Alpaca(e.Instruction, e.Input));

    /// <summary>DSKD's Dolly prompt: MiniLLM's processing of Dolly, the Alpaca text (<see cref="PromptTemplates.Dolly"/>).</summary>
    public static InstructionTemplate Dolly { get; } = new("dolly", e => PromptTemplates.Dolly(e.Instruction, e.Input, qwen2: false));

    /// <summary>MiniLLM's Qwen2 variant of the Dolly prompt (ChatML markers around the Alpaca text).</summary>
    public static InstructionTemplate DollyQwen2 { get; } = new("dolly-qwen2", e => PromptTemplates.Dolly(e.Instruction, e.Input, qwen2: true));

    /// <summary>The short prompt the bundled data is meant for: <c>"{instruction}: {input}\nAnswer:"</c>.</summary>
    public static InstructionTemplate Compact { get; } = new("compact", e => PromptTemplates.Compact(e.Instruction, e.Input)) { ResponsePrefix = " " };

    /// <summary>Llama-2 chat, one user turn, no system prompt; BOS written as <c>&lt;s&gt;</c> (encode without adding special tokens).</summary>
    public static InstructionTemplate Llama2Chat { get; } = new("llama2-chat", e => PromptTemplates.Llama2Chat([new ChatMessage("user", PromptTemplates.UserContent(e))]));

    /// <summary>ChatML, one user turn, no system prompt, with the assistant generation prompt.</summary>
    public static InstructionTemplate ChatMl { get; } = new("chatml", e => PromptTemplates.ChatMl([new ChatMessage("user", PromptTemplates.UserContent(e))], addGenerationPrompt: true));

    /// <summary>Looks up a template by <see cref="Name"/> (case-insensitive).</summary>
    /// <param name="name">The template name.</param>
    /// <returns>The template.</returns>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static InstructionTemplate FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        InstructionTemplate[] all = [Alpaca, Dolly, DollyQwen2, Compact, Llama2Chat, ChatMl];
        return all.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"Unknown prompt template '{name}'. Known: {string.Join(", ", all.Select(t => t.Name))}.", nameof(name));
    }

    /// <summary>Renders the example's prompt and pairs it with <see cref="ResponsePrefix"/> + output; the reference is the raw output.</summary>
    /// <param name="example">The example.</param>
    /// <returns>Prompt and response.</returns>
    public TextExample Apply(InstructionExample example)
    {
        ArgumentNullException.ThrowIfNull(example);
        return new TextExample(Render(example), ResponsePrefix + example.Output) { References = [example.Output] };
    }
}

/// <summary>
/// The prompt formats the seed papers use, as exact strings. Each returns the prompt only; the response follows it
/// directly (DSKD and ULD encode prompt and response separately and append EOS to the response).
/// </summary>
public static class PromptTemplates
{
    private const string AlpacaHeader = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";
    private const string AlpacaHeaderWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n";

    /// <summary>
    /// Stanford Alpaca: <c>"Below is an instruction that describes a task[, paired with an input that provides further
    /// context]. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n[### Input:\n{input}\n\n]### Response:\n"</c>.
    /// </summary>
    /// <param name="instruction">The instruction.</param>
    /// <param name="input">The input; the Input block is omitted when empty.</param>
    /// <returns>The prompt.</returns>
    public static string Alpaca(string instruction, string? input)
    {
        ArgumentNullException.ThrowIfNull(instruction);
        return string.IsNullOrEmpty(input)
            ? AlpacaHeader + "### Instruction:\n" + instruction + "\n\n### Response:\n"
            : AlpacaHeaderWithInput + "### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
    }

    /// <summary>
    /// DSKD's Dolly prompt, produced by MiniLLM's <c>tools/process_data_dolly.py</c>: the Alpaca text; for Qwen2 models
    /// wrapped as <c>"&lt;|im_start|&gt;" + alpaca + "&lt;|im_end|&gt;&lt;|im_start|&gt;Assistant:"</c>.
    /// </summary>
    /// <param name="instruction">The instruction.</param>
    /// <param name="input">The input (Dolly's context); the Input block is omitted when empty.</param>
    /// <param name="qwen2">Whether to use MiniLLM's Qwen2 variant.</param>
    /// <returns>The prompt.</returns>
    public static string Dolly(string instruction, string? input, bool qwen2 = false)
    {
        var alpaca = Alpaca(instruction, input);
        return qwen2 ? "<|im_start|>" + alpaca + "<|im_end|><|im_start|>Assistant:" : alpaca;
    }

    /// <summary>ULD's zero-shot extractive-QA prompt (llm-distillation): <c>"Context: {context}\nQuestion: {question}\nAnswer:"</c>.</summary>
    /// <param name="context">The passage.</param>
    /// <param name="question">The question.</param>
    /// <returns>The prompt; ULD encodes the answer as <c>" " + answer</c>.</returns>
    public static string UldSquad(string context, string question)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(question);
        return "Context: " + context + "\nQuestion: " + question + "\nAnswer:";
    }

    /// <summary>The bundled data's short prompt: <c>"{instruction}: {input}\nAnswer:"</c>, or <c>"{instruction}\nAnswer:"</c> without input.</summary>
    /// <param name="instruction">The instruction.</param>
    /// <param name="input">The input.</param>
    /// <returns>The prompt; the response is written after a space (<c>" 68"</c>).</returns>
    public static string Compact(string instruction, string? input)
    {
        ArgumentNullException.ThrowIfNull(instruction);
        return string.IsNullOrEmpty(input) ? instruction + "\nAnswer:" : instruction + ": " + input + "\nAnswer:";
    }

    /// <summary>
    /// Llama-2 chat, as its Hugging Face chat template renders it: the system message is folded into the first user turn
    /// as <c>"&lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n"</c>; each user turn is
    /// <c>bos + "[INST] " + content.strip() + " [/INST]"</c>, each assistant turn <c>" " + content.strip() + " " + eos</c>.
    /// </summary>
    /// <param name="messages">Messages; an optional first <c>system</c> message, then alternating user/assistant.</param>
    /// <param name="bosToken">The BOS text (Llama 2: <c>&lt;s&gt;</c>).</param>
    /// <param name="eosToken">The EOS text (Llama 2: <c>&lt;/s&gt;</c>).</param>
    /// <returns>The rendered conversation.</returns>
    /// <exception cref="ArgumentException">Roles do not alternate user/assistant after the optional system message.</exception>
    public static string Llama2Chat(IReadOnlyList<ChatMessage> messages, string bosToken = "<s>", string eosToken = "</s>")
    {
        ArgumentNullException.ThrowIfNull(messages);
        var system = messages.Count > 0 && messages[0].Role == "system" ? messages[0].Content : null;
        var turns = system is null ? messages : messages.Skip(1).ToList();
        var builder = new StringBuilder();
        for (var i = 0; i < turns.Count; i++)
        {
            var expected = i % 2 == 0 ? "user" : "assistant";
            if (turns[i].Role != expected)
            {
                throw new ArgumentException($"Llama-2 chat: message {i + (system is null ? 0 : 1)} has role '{turns[i].Role}', expected '{expected}' (roles must alternate user/assistant).", nameof(messages));
            }

            var content = turns[i].Content;
            if (i == 0 && system is not null)
            {
                content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
            }

            builder.Append(expected == "user"
                ? bosToken + "[INST] " + content.Trim() + " [/INST]"
                : " " + content.Trim() + " " + eosToken);
        }

        return builder.ToString();
    }

    /// <summary>
    /// ChatML (Qwen, many instruct models): each message <c>"&lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n"</c>,
    /// then <c>"&lt;|im_start|&gt;assistant\n"</c> when <paramref name="addGenerationPrompt"/> is set.
    /// </summary>
    /// <param name="messages">The messages, in order.</param>
    /// <param name="addGenerationPrompt">Whether to open the assistant turn.</param>
    /// <returns>The rendered conversation.</returns>
    public static string ChatMl(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var builder = new StringBuilder();
        foreach (var message in messages)
        {
            builder.Append("<|im_start|>").Append(message.Role).Append('\n').Append(message.Content).Append("<|im_end|>\n");
        }

        if (addGenerationPrompt)
        {
            builder.Append("<|im_start|>assistant\n");
        }

        return builder.ToString();
    }

    /// <summary>The user text of an instruction example in chat formats: <c>instruction</c>, or <c>instruction + "\n" + input</c> (LLaMA-Factory's convention).</summary>
    /// <param name="example">The example.</param>
    /// <returns>The user message content.</returns>
    public static string UserContent(InstructionExample example)
    {
        ArgumentNullException.ThrowIfNull(example);
        return string.IsNullOrEmpty(example.Input) ? example.Instruction : example.Instruction + "\n" + example.Input;
    }
}
