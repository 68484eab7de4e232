/**
 * @module The text the built-in tokenizer's merges are learned from: plain English written for
 * Parley (no third-party text), some chat phrasing, and a few accented, CJK and emoji words so
 * common multi-byte characters become tokens of their own.
 */

/** The training text. Changing it changes the built-in tokenizer: bump the generator version. */
export const TRAINING_CORPUS = `
The morning was quiet, and the light came in through the kitchen window. She made a cup of
coffee, opened the notebook on the table and wrote down what she wanted to do that day. There
were letters to answer, a garden to water and a long walk to take before the rain came back.
Her brother had called the night before. He said that the train would be late, that he would
bring the books she had asked for, and that he was looking forward to the dinner they had
planned. They had not seen each other since the spring, when the whole family met at the old
house by the river.

People often ask how a small town can keep its library open. The answer is simple: the people
who use it also look after it. Every week a few of them come in the evening to sort the new
books, to fix the chairs and to read to the children. Nobody is paid for this work, but
everyone who does it says that it is the best part of their week. When the roof needed a new
coat of paint, the school sent twenty students, and the work was done in two days.

A good question is worth more than a quick answer. If you want to learn how something works,
start with what you can see, write it down, and then ask why it happens that way. Try to
explain it to a friend. If you cannot explain it in plain words, you do not understand it yet,
and that is fine: it only means there is more to find out. Most of what we know today was
found by people who were patient, careful and willing to be wrong for a while.

The city is busy in the afternoon. Buses stop at every corner, shops open their doors to the
street, and the market sells fresh bread, fruit, cheese and flowers. At the end of the day the
streets become calm again, the lights come on one by one, and the sound of music drifts out of
the small restaurants near the station. Some visitors stay for a week; others only have time
for a walk along the water and a meal before their train leaves.

User: Hello! Can you help me plan a short trip for the weekend?
Assistant: Of course. Where would you like to go, and what do you enjoy doing when you travel?
User: I would like to see the mountains, walk a little and eat well.
Assistant: Then a small village in the valley is a good choice. You can take the morning train,
walk to the lake in the afternoon, and have dinner at a family restaurant in the evening.
User: Thank you, that sounds perfect.
Assistant: You are welcome. Have a wonderful time, and let me know if you need anything else.

System: You are a helpful assistant. Answer clearly and kindly, and keep your answers short.
User: What is the difference between weather and climate?
Assistant: Weather is what happens in the sky today or this week. Climate is the usual pattern
of weather in a place over many years. A cold day does not change the climate, but many warm
years in a row can show that the climate is changing.

Numbers and lists: 1, 2, 3, 10, 20, 100, 2024, 3.14, 42. First, second, third. Monday,
Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday. January, April, July, October.

Words from other languages travel well. In a café in Zürich you can order a crème brûlée after
an über-long walk, read a résumé, feel déjà vu, and meet a naïve fiancé. In München the menu
says Grüße and Müsli; in Paris it says été, année, écrire and élève. 中文 is written with
characters: 你好, 世界, 中国, 学生, 老师, 谢谢. 日本語 uses kana too: こんにちは, ありがとう.
Emoji carry meaning in short messages: 🙂 thanks, 👍 sounds good, 🎉 congratulations, ❤️ love,
😂 that is funny, 🙂 see you soon.
`;
