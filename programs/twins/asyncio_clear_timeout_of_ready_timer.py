import asyncio

async def sleeper():
    try:
        await asyncio.sleep(0.020)
        print("sleeper woke")
    finally:
        print("sleeper finally")

async def main():
    loop = asyncio.get_running_loop()
    b = None
    def a():
        print("a runs, clears b")
        b.cancel()
    loop.call_later(0, a)
    b = loop.call_later(0, lambda: print("b never runs"))
    t = None
    loop.call_later(0.020, lambda: print("cancel:", t.cancel()))
    t = asyncio.create_task(sleeper())
    await asyncio.sleep(0.050)
    print("sleeper cancelled:", t.cancelled())

asyncio.run(main())
