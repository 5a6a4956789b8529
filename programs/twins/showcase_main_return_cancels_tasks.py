import asyncio

async def worker(name, ms):
    try:
        print(name, "started")
        await asyncio.sleep(ms / 1000)
        print(name, "finished")
    finally:
        print(name, "finally")

async def main():
    quick = asyncio.create_task(worker("quick", 10))
    slow = asyncio.create_task(worker("slow", 50))
    await asyncio.sleep(0.020)
    print("main returns")

asyncio.run(main())
