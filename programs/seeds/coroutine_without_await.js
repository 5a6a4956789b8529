async function fetchData() {
    console.log("fetch_data: started");
    await new Promise(r => setTimeout(r, 10));
    console.log("fetch_data: finished");
    return 42;
}

function syncCaller() {
    const result = fetchData();
    console.log("sync_caller: result is 42?", result == 42);
}

syncCaller();
console.log("end of main");
