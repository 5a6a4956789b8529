# The seed's code; the wall-clock elapsed print is replaced by a fact that
# does not depend on the clock's exact value.
import asyncio
import time

async def fetch_user_data(user_id):
    print(f"[Python] Fetching data for user: {user_id}...")
    await asyncio.sleep(1.5)  # Simulate a 1.5 second network delay
    return {"id": user_id, "username": "dev_explorer", "role": "admin"}

async def fetch_system_settings():
    print("[Python] Fetching system settings...")
    await asyncio.sleep(1.0)  # Simulate a 1 second network delay
    return {"theme": "dark", "notifications": True}

async def load_dashboard():
    start_time = time.perf_counter()
    try:
        # Execute both tasks concurrently using asyncio.gather
        user, settings = await asyncio.gather(
            fetch_user_data(42),
            fetch_system_settings()
        )

        print("[Python] Dashboard Loaded Successfully:")
        print("User Info:", user)
        print("Settings:", settings)

        elapsed = time.perf_counter() - start_time
        print("[Python] Dashboard completed in under 2.5 seconds:", elapsed < 2.5)
    except Exception as e:
        print(f"[Python] Error loading dashboard: {e}")

async def main():
    await load_dashboard()

# Run the asyncio event loop
if __name__ == "__main__":
    asyncio.run(main())
