// The Python seed's program under the js policy: gather(a, b) is
// Promise.all([a, b]); objects print in console.log style.
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

async function fetchUserData(userId) {
    console.log("[Python] Fetching data for user: " + userId + "...");
    await sleep(1500);
    return { id: userId, username: "dev_explorer", role: "admin" };
}

async function fetchSystemSettings() {
    console.log("[Python] Fetching system settings...");
    await sleep(1000);
    return { theme: "dark", notifications: true };
}

async function loadDashboard() {
    const startTime = Date.now();
    try {
        const [user, settings] = await Promise.all([fetchUserData(42), fetchSystemSettings()]);
        console.log("[Python] Dashboard Loaded Successfully:");
        console.log("User Info:", user);
        console.log("Settings:", settings);
        const elapsed = Date.now() - startTime;
        console.log("[Python] Dashboard completed in under 2.5 seconds:", elapsed < 2500);
    } catch (e) {
        console.log("[Python] Error loading dashboard: " + e);
    }
}

async function main() {
    await loadDashboard();
}
main();
