import asyncio

async def main():
    async def swallow():
        async with asyncio.timeout(0.020):
            try:
                await asyncio.sleep(0.100)
                print("never")
            except asyncio.CancelledError:
                print("swallowed")
        print("after the block, cancelling:", asyncio.current_task().cancelling())
        return "done"
    print("swallow:", await asyncio.create_task(swallow()))

    async def doubled():
        try:
            async with asyncio.timeout(0.020):
                try:
                    await asyncio.sleep(0.100)
                    print("never")
                except asyncio.CancelledError:
                    asyncio.current_task().cancel()
                    raise
            print("never")
        except asyncio.CancelledError as e:
            print("doubled:", type(e).__name__, "cancelling:", asyncio.current_task().cancelling())
    t = asyncio.create_task(doubled())
    try:
        await t
    except asyncio.CancelledError as e:
        print("task:", type(e).__name__)
    print("cancelled:", t.cancelled())

asyncio.run(main())
