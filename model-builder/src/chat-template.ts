/**
 * @module The built-in model's chat template: ChatML (`<|im_start|>role\n…<|im_end|>\n`), which
 * also rejects conversations whose roles do not alternate user/assistant after an optional
 * system message, the way Llama-2 templates do, so the engine's error path for a template that
 * raises is exercised by the built-in model too.
 */

/** The Jinja source, for tokenizer_config.json's `chat_template`. */
export const CHAT_TEMPLATE = String.raw`{{- bos_token -}}
{%- if messages | length > 0 and messages[0]['role'] == 'system' -%}
  {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' -}}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
  {%- if message['role'] != ('user' if loop.index0 % 2 == 0 else 'assistant') -%}
    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/... after an optional system message') -}}
  {%- endif -%}
  {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|im_start|>assistant\n' -}}
{%- endif -%}`;
