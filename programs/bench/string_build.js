// bench: string_build — twin of string_build.lab.
//   1. repeated `s = s + piece` of 200,000 one-character pieces;
//   2. 200,000 pieces String(i) pushed onto an array and joined.
function build() {
  let s = "";
  for (let i = 0; i < 200000; i++) {
    s = s + String(i % 10);
  }
  const parts = [];
  for (let i = 0; i < 200000; i++) {
    parts.push(String(i));
  }
  const joined = parts.join("");
  console.log(s.length, joined.length);
}
build();
