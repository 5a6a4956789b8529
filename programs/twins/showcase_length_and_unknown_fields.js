let xs = [1, 2];
try { console.log("length:", xs.length); } catch (e) { console.log("caught:", e.message); }
try { console.log("lengths:", "abc".length, "😀".length); } catch (e) { console.log("caught:", e.message); }
try { console.log("size:", "abc".size); } catch (e) { console.log("caught:", e.message); }
try { console.log("list size:", xs.size); } catch (e) { console.log("caught:", e.message); }
console.log("upper still a method:", "abc".toUpperCase());
