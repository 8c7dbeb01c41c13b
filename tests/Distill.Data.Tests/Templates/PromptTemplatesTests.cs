namespace Distill.Data.Tests.Templates;

public sealed class PromptTemplatesTests
{
    [Fact]
    public void Alpaca_WithAndWithoutInput_ExactStrings()
    {
        Assert.Equal(
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a color.\n\n### Response:\n",
            PromptTemplates.Alpaca("Name a color.", ""));
        Assert.Equal(
            "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nSummarize.\n\n### Input:\nSome text.\n\n### Response:\n",
            PromptTemplates.Alpaca("Summarize.", "Some text."));
    }

    [Fact]
    public void Dolly_MiniLlmProcessing_IsAlpacaOrQwen2Wrapped()
    {
        Assert.Equal(PromptTemplates.Alpaca("Q", "I"), PromptTemplates.Dolly("Q", "I"));
        Assert.Equal(
            "<|im_start|>Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nQ\n\n### Response:\n<|im_end|><|im_start|>Assistant:",
            PromptTemplates.Dolly("Q", null, qwen2: true));
    }

    [Fact]
    public void UldSquad_ExactString() =>
        Assert.Equal("Context: Paris is in France.\nQuestion: Where is Paris?\nAnswer:", PromptTemplates.UldSquad("Paris is in France.", "Where is Paris?"));

    [Fact]
    public void Llama2Chat_SystemAndTurns_ExactString()
    {
        var text = PromptTemplates.Llama2Chat(
        [
            new ChatMessage("system", "Be brief."),
            new ChatMessage("user", " Hi "),
            new ChatMessage("assistant", "Hello."),
            new ChatMessage("user", "Bye"),
        ]);
        // The HF template strips the whole "<<SYS>>...\n\n" + " Hi " string, so the user's leading space survives inside it.
        Assert.Equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST] Hello. </s><s>[INST] Bye [/INST]", text);
        Assert.Throws<ArgumentException>(() => PromptTemplates.Llama2Chat([new ChatMessage("assistant", "x")]));
    }

    [Fact]
    public void ChatMl_WithGenerationPrompt_ExactString()
    {
        var text = PromptTemplates.ChatMl([new ChatMessage("system", "S"), new ChatMessage("user", "U")], addGenerationPrompt: true);
        Assert.Equal("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n", text);
    }

    [Fact]
    public void InstructionTemplate_Compact_RendersPromptAndSpacedResponse()
    {
        var example = new InstructionExample("Reverse the word", "plant", "tnalp");
        var text = InstructionTemplate.Compact.Apply(example);
        Assert.Equal("Reverse the word: plant\nAnswer:", text.Prompt);
        Assert.Equal(" tnalp", text.Response);
        Assert.Equal("<|im_start|>user\nReverse the word\nplant<|im_end|>\n<|im_start|>assistant\n", InstructionTemplate.ChatMl.Render(example));
        Assert.Equal("<s>[INST] Reverse the word\nplant [/INST]", InstructionTemplate.Llama2Chat.Render(example));
        Assert.Same(InstructionTemplate.Dolly, InstructionTemplate.FromName("DOLLY"));
        Assert.Contains("compact", Assert.Throws<ArgumentException>(() => InstructionTemplate.FromName("nope")).Message, StringComparison.Ordinal);
    }
}
