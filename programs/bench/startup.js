// bench: startup — twin of startup.lab: start-up and one line printed.
console.log("hello");
