import asyncio


async def child(name):
    try:
        await asyncio.sleep(0.1)
    finally:
        print("child", name, "cancelled")


async def outer():
    try:
        await asyncio.gather(child("a"), child("b"))
    finally:
        print("outer: cancelled")


async def main():
    t = asyncio.create_task(outer())
    await asyncio.sleep(0.01)
    t.cancel()
    try:
        await t
    finally:
        print("cancel took effect")


asyncio.run(main())
