import asyncio

async def worker():
    try:
        try:
            await asyncio.sleep(0.050)
            print("worker: woke")
        except Exception as e:
            print("worker: catch saw", e)
    finally:
        print("worker: finally")

async def main():
    w = asyncio.create_task(worker())
    await asyncio.sleep(0.010)
    print("main returns")

asyncio.run(main())
