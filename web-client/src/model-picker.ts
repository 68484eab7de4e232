/**
 * @module The model picker, filled from ListModels, and the card that says what the chosen
 * model is (its description, context length, weights, chat template).
 */
import type { ModelInfo } from "@parley/gen/inference/v1/inference_pb";
import { h } from "./dom.js";

/** Options of `createModelPicker`. */
export interface ModelPickerOptions {
  readonly select: HTMLSelectElement;
  /** Elements that show the chosen model's card (the empty state, the settings panel). */
  readonly cards: readonly HTMLElement[];
  readonly onChange: (model: ModelInfo | undefined) => void;
}

/** The picker's states. */
export interface ModelPicker {
  setLoading(): void;
  /** Lists the models and selects `selectedId` (or the first). */
  setModels(models: readonly ModelInfo[], selectedId: string): void;
  /** ListModels failed: requests go to the gateway's default model. */
  setUnavailable(): void;
  selected(): ModelInfo | undefined;
}

/** Wires the picker. */
export function createModelPicker(options: ModelPickerOptions): ModelPicker {
  const { select } = options;
  let models: readonly ModelInfo[] = [];
  const selected = () => models.find((model) => model.id === select.value);
  const showCards = (model: ModelInfo | undefined, placeholder: string) => {
    for (const card of options.cards) {
      card.replaceChildren(
        ...(model === undefined ? [h("p", { class: "muted" }, placeholder)] : modelCard(model)),
      );
    }
    select.title = model?.description ?? "";
  };
  const placeholderOption = (text: string) => h("option", { value: "" }, text);

  select.addEventListener("change", () => {
    const model = selected();
    showCards(model, "");
    options.onChange(model);
  });

  return {
    setLoading() {
      models = [];
      select.replaceChildren(placeholderOption("Loading models…"));
      select.disabled = true;
      showCards(undefined, "Loading models…");
    },
    setModels(next, selectedId) {
      models = next;
      select.replaceChildren(
        ...next.map((model) =>
          h("option", { value: model.id }, model.isDefault ? `${model.id} (default)` : model.id),
        ),
      );
      select.disabled = next.length === 0;
      select.value = next.some((model) => model.id === selectedId)
        ? selectedId
        : (next[0]?.id ?? "");
      showCards(selected(), "This gateway serves no models.");
    },
    setUnavailable() {
      models = [];
      select.replaceChildren(placeholderOption("Default model"));
      select.disabled = true;
      showCards(undefined, "The model list could not be loaded.");
    },
    selected,
  };
}

function modelCard(model: ModelInfo): HTMLElement[] {
  const facts: [string, string][] = [
    ["Context", `${model.contextLength.toLocaleString("en-US")} tokens`],
    ["Weights", model.dtype || "unknown"],
    ["Vocabulary", model.vocabSize.toLocaleString("en-US")],
    ["Chat template", model.hasChatTemplate ? "yes" : "no (Complete mode)"],
  ];
  return [
    h("p", { class: "model-name" }, model.id),
    h("p", { class: "model-description" }, model.description || "No description."),
    h(
      "dl",
      { class: "model-facts" },
      ...facts.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value))),
    ),
  ];
}
