import asyncio

async def fetch_data():
    print("fetch_data: started")
    await asyncio.sleep(0.010)
    print("fetch_data: finished")
    return 42

def sync_caller():
    result = fetch_data()
    print("sync_caller: result is 42?", result == 42)

async def main():
    sync_caller()
    print("end of main")

asyncio.run(main())
