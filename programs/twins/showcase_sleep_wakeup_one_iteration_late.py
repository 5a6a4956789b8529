import asyncio

async def sleeper():
    await asyncio.sleep(0.010)
    print("sleeper woke (its timer set first)")

async def main():
    loop = asyncio.get_running_loop()
    s = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    loop.call_later(0.010, lambda: print("timer callback (set second)"))
    await s
    await asyncio.sleep(0.010)

asyncio.run(main())
