import asyncio


async def late():
    try:
        print("late: started")
        await asyncio.sleep(0.05)
        print("late: never")
    finally:
        print("late: finally")


def start_late():
    asyncio.create_task(late())


async def sleeper():
    try:
        await asyncio.sleep(0.1)
    finally:
        print("sleeper: cancelled")
        asyncio.get_running_loop().call_soon(start_late)


async def main():
    asyncio.create_task(sleeper())
    await asyncio.sleep(0.001)
    print("main returns")


asyncio.run(main())
