import asyncio

async def late():
    print("late: first step")
    try:
        await asyncio.sleep(0.010)
        print("late: woke up")
    finally:
        print("late: finally")

async def main():
    print("main: spawning and returning")
    t = asyncio.create_task(late())

asyncio.run(main())
