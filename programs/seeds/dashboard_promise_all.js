// The seed's code; console.time/timeEnd (wall-clock) dropped, and the
// never-taken error branch logs with console.log (looplab's print) instead of
// console.error.
// Helper to simulate network latency
const delay = (ms) => new Promise(resolve => setTimeout(resolve, ms));

async function fetchUserData(userId) {
    console.log(`[JS] Fetching data for user: ${userId}...`);
    await delay(1500); // Simulate a 1.5 second network delay
    return { id: userId, username: "dev_explorer", role: "admin" };
}

async function fetchSystemSettings() {
    console.log("[JS] Fetching system settings...");
    await delay(1000); // Simulate a 1 second network delay
    return { theme: "dark", notifications: true };
}

async function loadDashboard() {
    try {
        // Execute both tasks concurrently
        const [user, settings] = await Promise.all([
            fetchUserData(42),
            fetchSystemSettings()
        ]);

        console.log("[JS] Dashboard Loaded Successfully:");
        console.log("User Info:", user);
        console.log("Settings:", settings);
    } catch (error) {
        console.log("[JS] Error loading dashboard:", error);
    }
}

loadDashboard();
